"""API errors: one flat hierarchy, one JSON shape, one place that turns them into responses.

Every error the API returns has the body ``{"error": {"code": "...", "message": "..."}}``:
``code`` is stable and meant for programs, ``message`` is for people and may change.
Handlers raise these (a plugin's too: ``ApiError("…", status=413, code="firmware_too_large")`` where no
subclass fits); the http plugin's error middleware renders them for every route, the core's and plugins'.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from hub import HubError


class ApiError(HubError):
    """Base class: an error the API reports to the client with ``status`` and ``code``."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    """A body or query parameter failed validation (400)."""

    code = "invalid_request"


class InvalidJson(ApiError):
    """The body is not a JSON document (400)."""

    code = "invalid_json"


class Unauthorized(ApiError):
    """No credentials, or credentials that are wrong, expired or revoked (401)."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": 'Bearer realm="hub"'})


class Forbidden(ApiError):
    """Authenticated or not, this is not allowed (403)."""

    status = 403
    code = "forbidden"


class Banned(Forbidden):
    """The client address is banned for a while after repeated failed sign-ins (403)."""

    code = "banned"


class NotFound(ApiError):
    """The node, entity, token or path does not exist (404)."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """The request clashes with existing state, e.g. a username already taken (409)."""

    status = 409
    code = "conflict"


class TooManyRequests(ApiError):
    """The client must wait before trying again (429); ``Retry-After`` says how long."""

    status = 429
    code = "too_many_requests"


class ServiceUnavailable(ApiError):
    """A plugin the endpoint needs (storage) is not loaded or failed (503)."""

    status = 503
    code = "unavailable"


def error_body(code: str, message: str) -> bytes:
    """The one error shape, serialized."""
    return orjson.dumps({"error": {"code": code, "message": message}})


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON error response in the one shape."""
    return web.Response(status=status, body=error_body(code, message), content_type="application/json", headers=headers)


def retry_after(seconds: float) -> dict[str, str]:
    """A ``Retry-After`` header for ``seconds`` (rounded up, at least 1)."""
    return {"Retry-After": str(max(1, int(seconds + 0.999)))}
