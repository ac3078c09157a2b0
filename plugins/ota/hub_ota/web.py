"""What every OTA route shares: the API's one error shape, JSON bodies and queries, and OpenAPI operations.

The http plugin's own helpers are private to it, so the OTA routes answer in the same shape by themselves:
``{"error": {"code", "message"}}``. Handlers raise :class:`ApiError` (or one of the plugin's errors, mapped
by class in :data:`ERROR_STATUS`), and :func:`api` turns it into the response. Bodies and queries are
validated with voluptuous, and an unknown field or parameter is an error, as everywhere in the API.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

import orjson
import voluptuous as vol
from aiohttp import web

from hub import HubError

from .errors import FirmwareNotFound, FirmwareTooLarge, InvalidFirmware, UnknownChip, UnsafeName, VersionConflict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Route(NamedTuple):
    """One endpoint, as the ``hub_http_routes`` hook registers it."""

    method: str
    path: str
    handler: Handler
    doc: dict[str, Any]
    auth: bool = True


class ApiError(HubError):
    """An answer other than success: ``status``, a stable ``code`` for programs, a message for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


ERROR_STATUS: dict[type[HubError], tuple[int, str]] = {
    FirmwareTooLarge: (413, "firmware_too_large"),
    InvalidFirmware: (400, "invalid_firmware"),
    UnsafeName: (400, "unsafe_name"),
    UnknownChip: (400, "unknown_chip"),
    VersionConflict: (409, "version_conflict"),
    FirmwareNotFound: (404, "firmware_not_found"),
}
"""The plugin's errors as HTTP answers (the first matching class wins: FirmwareTooLarge is an InvalidFirmware)."""


def error_response(status: int, code: str, message: str) -> web.Response:
    """The API's error shape."""
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return web.Response(status=status, body=body, content_type="application/json")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def api(handler: Handler) -> Handler:
    """Wrap a route handler so that :class:`ApiError` and the plugin's errors become error responses."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as err:
            return error_response(err.status, err.code, err.message)
        except tuple(ERROR_STATUS) as err:
            status, code = next(answer for kind, answer in ERROR_STATUS.items() if isinstance(err, kind))
            return error_response(status, code, str(err))

    return wrapped


def describe_invalid(error: vol.Invalid) -> str:
    """``stages.0: expected …; rate: …`` — one clause per problem."""
    errors = error.errors if isinstance(error, vol.MultipleInvalid) else [error]
    clauses = []
    for err in errors:
        where = ".".join(str(part) for part in err.path)
        message = {"extra keys not allowed": "unknown field", "required key not provided": "required"}.get(
            err.msg, err.msg
        )
        clauses.append(f"{where}: {message}" if where else message)
    return "; ".join(sorted(clauses))


async def read_json(request: web.Request, schema: vol.Schema) -> dict[str, Any]:
    """The body as a JSON object validated by ``schema``; 400 ``invalid_json``/``invalid_request`` otherwise.

    The http server's body limit applies (413 beyond it)."""
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as err:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "body must be a JSON object")
    try:
        return schema(data)
    except vol.Invalid as err:
        raise ApiError(400, "invalid_request", describe_invalid(err)) from None


def read_query(request: web.Request, schema: vol.Schema) -> dict[str, Any]:
    """The query string validated by ``schema``; a repeated or unknown parameter is a 400."""
    raw: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise ApiError(400, "invalid_request", f"{key}: given more than once")
        raw[key] = values[0]
    try:
        return schema(raw)
    except vol.Invalid as err:
        raise ApiError(400, "invalid_request", describe_invalid(err)) from None


# --- OpenAPI -----------------------------------------------------------------------------------------------

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


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def operation(
    summary: str,
    *,
    ok: dict[str, Any] | None,
    status: int = 200,
    description: str = "",
    params: Sequence[dict[str, Any]] = (),
    body: dict[str, Any] | None = None,
    body_media: str = "application/json",
    media: str = "application/json",
    errors: Iterable[int] = (),
    public: bool = False,
    extra_responses: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An OpenAPI operation of the ``ota`` tag: 400 with parameters or a body, 401 unless public, 404 with a path."""
    success: dict[str, Any] = {"description": "success"}
    if ok is not None:
        success["content"] = {media: {"schema": ok}}
    responses: dict[str, Any] = {str(status): success, **(extra_responses or {})}
    codes = set(errors)
    if params or body is not None:
        codes.add(400)
    if not public:
        codes.add(401)
    if any(param["in"] == "path" for param in params):
        codes.add(404)
    error = {"description": "error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for code in sorted(codes):
        responses[str(code)] = error
    responses["default"] = error
    result: dict[str, Any] = {"summary": summary, "tags": ["ota"], "responses": responses}
    if description:
        result["description"] = description
    if params:
        result["parameters"] = list(params)
    if body is not None:
        result["requestBody"] = {"required": True, "content": {body_media: {"schema": body}}}
    if public:
        result["security"] = []
    return result
