"""What HTTP endpoints are made of, for the http plugin's API and for every plugin that adds routes.

A plugin's ``hub_http_routes`` hook registers handlers on the http plugin's server, behind the same
middleware as the core API (bearer-token auth, the audit trail, error rendering). With this kit its
endpoints also answer like the core's:

- raise :class:`ApiError` (or ``NotFound``, ``Conflict``, …) and the client gets the one error shape
  ``{"error": {"code", "message"}}`` with that status;
- :func:`read_json` and :func:`read_query` validate a body or query string with voluptuous, so bad input
  is a 400 naming each problem, and an unknown field or parameter is an error, never silently ignored;
- :func:`operation`, :func:`path_param` and :func:`query_param` document the route in ``/api/openapi.json``.

It needs aiohttp, which the hub always installs; the core (``hub``, ``hub.core``) does not import it.
"""

from __future__ import annotations

from .errors import (
    ApiError,
    BadRequest,
    Banned,
    Conflict,
    Forbidden,
    InvalidJson,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    error_body,
    error_response,
    retry_after,
)
from .openapi import ERROR_REF, operation, path_param, query_param
from .routes import Handler, Route
from .validation import (
    JSON_CONTENT_TYPE,
    describe_invalid,
    int_in,
    json_int,
    json_response,
    read_json,
    read_query,
    text,
    timestamp,
)

__all__ = [
    "ERROR_REF",
    "JSON_CONTENT_TYPE",
    "ApiError",
    "BadRequest",
    "Banned",
    "Conflict",
    "Forbidden",
    "Handler",
    "InvalidJson",
    "NotFound",
    "Route",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "describe_invalid",
    "error_body",
    "error_response",
    "int_in",
    "json_int",
    "json_response",
    "operation",
    "path_param",
    "query_param",
    "read_json",
    "read_query",
    "retry_after",
    "text",
    "timestamp",
]
