"""``GET /api/openapi.json``: the OpenAPI 3 document, built from the same route list the server serves.

Each API module declares its routes with an OpenAPI operation next to the
handler (made with the helpers here), so the document cannot list an endpoint
the server lacks or miss one it has; schemathesis checks the rest against the
running server (tests/http/test_openapi.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from hub import __version__

from .middleware import SERVER_KEY
from .openapi_schemas import SCHEMAS
from .routes import Route
from .validation import json_response

OPENAPI_VERSION = "3.0.3"


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    if name not in SCHEMAS:
        raise KeyError(f"no OpenAPI component schema {name!r}")
    return {"$ref": f"#/components/schemas/{name}"}


def query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    """A query parameter."""
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def path(name: str, description: str) -> dict[str, Any]:
    """A path parameter (always a string)."""
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _json(schema: dict[str, Any], description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def operation(
    summary: str,
    *,
    tag: str,
    ok: dict[str, Any] | None,
    status: int = 200,
    description: str = "",
    params: Sequence[dict[str, Any]] = (),
    body: dict[str, Any] | None = None,
    public: bool = False,
    errors: Iterable[int] = (),
    media: str = "application/json",
) -> dict[str, Any]:
    """An OpenAPI operation: ``ok`` is the success body schema (None for an empty response) of type ``media``.

    400 is documented when there are parameters or a body, 401 unless ``public``,
    404 when the path has parameters; ``errors`` adds others.  A ``default``
    response documents the error shape for anything else (403 banned, 503).
    """
    responses: dict[str, Any] = {
        str(status): _json(ok, "success", media) if ok is not None else {"description": "success"}
    }
    codes = set(errors)
    if params or body is not None:
        codes.add(400)
    if not public:
        codes.add(401)
    if any(param["in"] == "path" for param in params):
        codes.add(404)
    for code in sorted(codes):
        responses[str(code)] = _json(ref("Error"), _ERROR_TEXT.get(code, "error"))
    responses["default"] = _json(ref("Error"), "error")
    result: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if description:
        result["description"] = description
    if params:
        result["parameters"] = list(params)
    if body is not None:
        result["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public:
        result["security"] = []
    return result


_ERROR_TEXT = {
    400: "invalid parameters or body",
    401: "missing, invalid, expired or revoked credentials",
    403: "forbidden (or the address is banned)",
    404: "not found",
    409: "conflict",
    429: "too early after a failed attempt; see Retry-After",
    503: "a plugin the endpoint needs is not loaded",
}


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
