"""The middlewares every request passes: compression, errors to JSON, bans, bearer authentication, counting.

Order (outermost first): :func:`compression_middleware` gzips large JSON answers
to GET requests for clients that accept it; :func:`errors_middleware` turns any
exception into the one JSON error shape and counts the response status;
:func:`auth_middleware` checks the bearer token of every route not registered as
public.  Bans are not checked here: they stop password guessing on the sign-in
endpoints (:mod:`.auth.guard`), never a request that carries a valid token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from aiohttp.web_middlewares import Handler
from aiohttp.web_response import ContentCoding

from hub import StorageUnavailable, acting_as
from hub.web import ApiError, Unauthorized, error_response

from .remote import client_address
from .routes import PRINCIPAL_KEY

if TYPE_CHECKING:
    from .server import HttpServer

_LOGGER = logging.getLogger(__name__)

SERVER_KEY: web.AppKey[HttpServer] = web.AppKey("hub_http_server")

_HTTP_CODES = {
    400: ("bad_request", "malformed request"),
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", "method not allowed on this endpoint"),
    413: ("payload_too_large", "request body too large"),
}


COMPRESS_MIN_BYTES = 4096
"""JSON bodies at least this large are gzipped (aiohttp does it in a thread, off the event loop)."""


def accepts_gzip(accept_encoding: str) -> bool:
    """True when an ``Accept-Encoding`` header allows gzip (``gzip`` or ``*`` with a q-value above 0)."""
    allowed: dict[str, bool] = {}
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        allowed[coding.strip()] = quality > 0
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", False)))


@web.middleware
async def compression_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gzip a large JSON answer to a GET when the client accepts it (a page of nodes shrinks about tenfold).

    Only GET: answers to POSTs carry tokens, and compressing a secret next to anything the
    client sent would open the door to BREACH-style guessing.
    """
    response = await handler(request)
    if request.method == "GET" and type(response) is web.Response and response.content_type == "application/json":
        body = response.body
        if isinstance(body, bytes) and len(body) >= COMPRESS_MIN_BYTES:
            response.headers[hdrs.VARY] = hdrs.ACCEPT_ENCODING
            if accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
                response.enable_compression(ContentCoding.gzip)
    return response


def bearer_token(request: web.Request) -> str:
    """The token of an ``Authorization: Bearer …`` header, else Unauthorized."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an Authorization: Bearer token is required", code="missing_token")
    return token.strip()


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render errors in the one shape; never let an exception become aiohttp's HTML 500 page."""
    server = request.app[SERVER_KEY]
    try:
        response = await handler(request)
    except ApiError as err:
        response = error_response(err.status, err.code, err.message, err.headers)
    except StorageUnavailable as err:  # a plugin's route found the database down: retry later, not a bug
        response = error_response(503, "storage_unavailable", str(err))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_CODES.get(exc.status, (exc.reason.lower().replace(" ", "_"), exc.reason))
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        response = error_response(exc.status, code, message, headers)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        _LOGGER.exception("Unhandled error in %s %s", request.method, request.path)
        response = error_response(500, "internal_error", "internal server error (see the hub's log)")
    server.count_response(response.status)
    principal = request.get(PRINCIPAL_KEY)
    if principal is None:
        server.audit.record(request, response.status, None, None)
    else:
        server.audit.record(request, response.status, principal.user.username, principal.root_id)
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a valid bearer token unless the route is public."""
    server = request.app[SERVER_KEY]
    client_address(request, server.trusted_proxies)  # once per request: the audit trail records it
    if server.requires_auth(request):
        principal = server.auth.authenticate(bearer_token(request))
        request[PRINCIPAL_KEY] = principal
        with acting_as(principal.user.username):  # plugins' handlers read it with hub.current_actor()
            return await handler(request)
    return await handler(request)
