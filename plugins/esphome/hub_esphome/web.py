"""What the provisioning routes share: the API's one error shape and OpenAPI operations of the ``esphome`` tag.

The http plugin's helpers are private to it, so these routes answer in the same shape by themselves:
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

import orjson
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Route(NamedTuple):
    """One endpoint, as the ``hub_http_routes`` hook registers it (every one needs a bearer token)."""

    method: str
    path: str
    handler: Handler
    doc: dict[str, Any]


class ApiError(Exception):
    """An answer other than success: ``status``, a stable ``code`` for programs, a message for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def api(handler: Handler, *, query: Iterable[str] = ()) -> Handler:
    """Turn :class:`ApiError` into the error shape; a query parameter not in ``query``, or given twice, is a 400.

    As everywhere in the hub's API, an unknown parameter is an error rather than silently ignored
    (a misspelt filter must not return everything).
    """
    allowed = frozenset(query)

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            for key in request.query:
                if key not in allowed:
                    raise ApiError(400, "invalid_request", f"{key[:40]!r}: unknown query parameter")
                if len(request.query.getall(key)) > 1:
                    raise ApiError(400, "invalid_request", f"{key!r}: given more than once")
            return await handler(request)
        except ApiError as err:
            body = orjson.dumps({"error": {"code": err.code, "message": err.message}})
            return web.Response(status=err.status, body=body, content_type="application/json")

    return wrapped


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def operation(
    summary: str,
    *,
    ok: dict[str, Any] | None,
    status: int = 200,
    description: str = "",
    params: Sequence[dict[str, Any]] = (),
    media: str = "application/json",
    errors: Iterable[int] = (),
) -> dict[str, Any]:
    """An OpenAPI operation of the ``esphome`` tag: 401 always, 404 with a path parameter."""
    success: dict[str, Any] = {"description": "success"}
    if ok is not None:
        success["content"] = {media: {"schema": ok}}
    responses: dict[str, Any] = {str(status): success}
    codes = {401, *errors}
    if any(param["in"] == "path" for param in params):
        codes.add(404)
    if any(param["in"] == "query" for param in params):
        codes.add(400)
    error = {"description": "error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for code in sorted(codes):
        responses[str(code)] = error
    responses["default"] = error
    result: dict[str, Any] = {"summary": summary, "tags": ["esphome"], "responses": responses}
    if description:
        result["description"] = description
    if params:
        result["parameters"] = list(params)
    return result
