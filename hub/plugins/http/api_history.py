"""History endpoints: a node entity's telemetry downsampled for charts, and a node's status changes.

Both are answered by the storage plugin's services (``storage.history``,
``storage.status_history``); the API validates the request, checks that the
node (and entity) exist, and answers 503 when no storage plugin is loaded.
"""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol
from aiohttp import web

from hub import Hub, ServiceValidationError, StorageUnavailable
from hub.web import (
    BadRequest,
    NotFound,
    Route,
    ServiceUnavailable,
    int_in,
    json_response,
    operation,
    path_param,
    query_param,
    read_query,
    timestamp,
)

from .api_nodes import find_node
from .middleware import SERVER_KEY
from .openapi import ref

_LOGGER = logging.getLogger(__name__)

DEFAULT_RANGE = 86400.0
DEFAULT_POINTS = 500
MAX_POINTS = 5000
RESOLUTIONS = ("auto", "raw", "1m", "1h")
"""What ``storage.history`` may answer from: the raw rows or a rollup (PostgreSQL), ``auto`` chooses."""

HISTORY_QUERY = vol.Schema(
    {
        vol.Optional("start"): timestamp,
        vol.Optional("end"): timestamp,
        vol.Optional("points", default=DEFAULT_POINTS): int_in(1, MAX_POINTS),
        vol.Optional("resolution", default="auto"): vol.In(
            RESOLUTIONS, msg=f"expected one of {', '.join(RESOLUTIONS)}"
        ),
    }
)
STATUS_QUERY = vol.Schema(
    {
        vol.Optional("start"): timestamp,
        vol.Optional("end"): timestamp,
        vol.Optional("limit", default=100): int_in(1, 1000),
    }
)


async def call_storage(hub: Hub, name: str, data: dict[str, Any]) -> Any:
    """Call ``storage.<name>``; 503 when storage is not loaded, unavailable or fails, 400 if it rejects the data."""
    if not hub.services.has("storage", name):
        raise ServiceUnavailable(
            f"this endpoint needs the storage plugin, which is not loaded (no storage.{name} service)",
            code="storage_unavailable",
        )
    try:
        return await hub.services.call("storage", name, data)
    except ServiceValidationError as err:
        raise BadRequest(str(err)) from None
    except StorageUnavailable as err:  # the database is down: the client may retry, no traceback needed
        raise ServiceUnavailable(str(err), code="storage_unavailable") from err
    except Exception as err:
        _LOGGER.exception("storage.%s failed", name)
        raise ServiceUnavailable(f"storage.{name} failed: {err}", code="storage_error") from err


def _time_range(hub: Hub, params: dict[str, Any], default_range: float | None) -> dict[str, float]:
    end = params.get("end")
    start = params.get("start")
    if default_range is not None:
        end = hub.clock() if end is None else end
        start = end - default_range if start is None else start
    if start is not None and end is not None and start >= end:
        raise BadRequest("start: must be before end")
    return {key: value for key, value in (("start", start), ("end", end)) if value is not None}


async def entity_history(request: web.Request) -> web.Response:
    """min/avg/max of one entity per time bucket, at most ``points`` buckets between start and end."""
    hub = request.app[SERVER_KEY].hub
    node = find_node(hub, request.match_info["node_id"])
    key = request.match_info["key"]
    if key not in node.entities:
        raise NotFound(f"node {node.node_id} has no entity {key!r}", code="entity_not_found")
    params = read_query(request, HISTORY_QUERY)
    span = _time_range(hub, params, DEFAULT_RANGE)
    data = {"node_id": node.node_id, "key": key, **span, "points": params["points"], "resolution": params["resolution"]}
    return json_response(await call_storage(hub, "history", data))


async def status_history(request: web.Request) -> web.Response:
    """The node's status changes, newest first."""
    hub = request.app[SERVER_KEY].hub
    node = find_node(hub, request.match_info["node_id"])
    params = read_query(request, STATUS_QUERY)
    data = {"node_id": node.node_id, **_time_range(hub, params, None), "limit": params["limit"]}
    history = await call_storage(hub, "status_history", data)
    return json_response({"node_id": node.node_id, "history": history})


_TIME = {"anyOf": [{"type": "number", "minimum": 0, "maximum": 4102444800}, {"type": "string", "format": "date-time"}]}
_NODE_ID = path_param("node_id", "node id (for ESP32 nodes the MAC, in any common spelling)")

ROUTES = [
    Route(
        "GET",
        "/api/nodes/{node_id}/history/{key}",
        entity_history,
        doc=operation(
            "Telemetry history of one entity, downsampled",
            tag="history",
            description="Buckets of equal width between start and end (default: the last 24 h), at most `points` "
            "of them, each with min/avg/max/count. Times are epoch seconds or ISO 8601. `resolution` in the answer "
            "says what it was computed from.",
            params=[
                _NODE_ID,
                path_param("key", "entity key, e.g. temperature"),
                query_param("start", _TIME, "range start (default: end - 24 h)"),
                query_param("end", _TIME, "range end (default: now)"),
                query_param(
                    "points", {"type": "integer", "minimum": 1, "maximum": MAX_POINTS}, "most buckets to return"
                ),
                query_param(
                    "resolution",
                    {"type": "string", "enum": list(RESOLUTIONS)},
                    "raw rows or a 1-minute/1-hour rollup (PostgreSQL; SQLite always raw); auto (default): the "
                    "coarsest rollup no wider than a bucket",
                ),
            ],
            ok=ref("History"),
            errors=(503,),
        ),
    ),
    Route(
        "GET",
        "/api/nodes/{node_id}/status_history",
        status_history,
        doc=operation(
            "Status changes of a node, newest first",
            tag="history",
            params=[
                _NODE_ID,
                query_param("start", _TIME, "only changes at or after this time"),
                query_param("end", _TIME, "only changes before this time"),
                query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "most changes to return"),
            ],
            ok=ref("StatusHistory"),
            errors=(503,),
        ),
    ),
]
