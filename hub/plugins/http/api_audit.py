"""``GET /api/audit``: the audit trail — every API request that could change something, newest first."""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from .middleware import SERVER_KEY
from .openapi import operation, query, ref
from .routes import Route
from .validation import json_response, read_query

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
                query("before_id", {"type": "integer", "minimum": 1}, "only records older than this one"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many (100)"),
            ],
            ok=ref("AuditList"),
            errors=(503,),
        ),
    ),
]
