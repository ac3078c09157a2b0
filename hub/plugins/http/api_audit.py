"""``GET /api/audit``: the audit trail — every API request that could change something, newest first."""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from hub.web import Route, json_response, operation, query_param, read_query

from .middleware import SERVER_KEY
from .openapi import ref

LIST_QUERY = vol.Schema(
    {
        vol.Optional("before_id"): vol.All(vol.Coerce(int), vol.Range(min=1)),
        vol.Optional("limit", default=100): vol.All(vol.Coerce(int), vol.Range(min=1, max=1000)),
    }
)


async def list_audit(request: web.Request) -> web.Response:
    """Who did what, when: page with ``before_id`` = the last record's ``id``."""
    params = read_query(request, LIST_QUERY)
    records = await request.app[SERVER_KEY].audit.query(limit=params["limit"], before_id=params.get("before_id"))
    return json_response({"records": records})


ROUTES = [
    Route(
        "GET",
        "/api/audit",
        list_audit,
        doc=operation(
            "The audit trail",
            tag="system",
            params=[
                query_param("before_id", {"type": "integer", "minimum": 1}, "only records older than this one"),
                query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many (100)"),
            ],
            ok=ref("AuditList"),
            errors=(503,),
        ),
    ),
]
