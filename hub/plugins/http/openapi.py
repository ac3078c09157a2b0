"""``GET /api/openapi.json``: the OpenAPI 3 document, built from the same route list the server serves.

Each API module declares its routes with an OpenAPI operation next to the
handler (made with :func:`hub.web.operation`, as plugins' routes are), so the document cannot list an endpoint
the server lacks or miss one it has; schemathesis checks the rest against the
running server (tests/http/test_openapi.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from hub import __version__
from hub.web import Route, json_response, operation

from .middleware import SERVER_KEY
from .openapi_schemas import SCHEMAS

OPENAPI_VERSION = "3.0.3"


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    if name not in SCHEMAS:
        raise KeyError(f"no OpenAPI component schema {name!r}")
    return {"$ref": f"#/components/schemas/{name}"}


def _operation_id(method: str, route_path: str) -> str:
    words = [word for word in re.split(r"[^A-Za-z0-9]+", route_path) if word and word != "api"]
    return "_".join([method.lower(), *words])


def build_document(routes: Iterable[Route], server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document of every route that has a ``doc``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.doc is None:
            continue
        doc_path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.path)
        paths.setdefault(doc_path, {})[route.method.lower()] = {
            "operationId": _operation_id(route.method, doc_path),
            **route.doc,
        }
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "hub API",
            "version": __version__,
            "description": "REST API of the hub. Every endpoint needs `Authorization: Bearer <token>` except those "
            "marked otherwise. The WebSocket API (/api/websocket) is described in docs/http-api.md.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


async def openapi_handler(request: web.Request) -> web.Response:
    """Serve the document (built per request: cheap, and it includes routes plugins added)."""
    server = request.app[SERVER_KEY]
    return json_response(build_document(server.routes, server.url))


ROUTES = [
    Route(
        "GET",
        "/api/openapi.json",
        openapi_handler,
        doc=operation("This OpenAPI document", tag="meta", ok={"type": "object"}),
    ),
]
