"""``/api/…/commands``: send a command to a node, follow it to its verdict, list and cancel.

The lifecycle lives in the core (``hub.commands``); this module only validates
requests, records who asked, and reads history from storage.  Every command
carries its sender, and a cancel records who cancelled, so "who did what, when"
is in the command's own history.
"""

from __future__ import annotations

import math
from typing import Any

import voluptuous as vol
from aiohttp import web

from hub import CommandNotFound, CommandRejected
from hub.core.commands import (
    DEFAULT_PRIORITY,
    DEFAULT_TTL,
    MAX_PRIORITY,
    MAX_TTL,
    MIN_PRIORITY,
    OFFLINE_POLICIES,
    OFFLINE_QUEUE,
    STATUSES,
)
from hub.web import (
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    Route,
    json_int,
    json_response,
    operation,
    path_param,
    query_param,
    read_json,
    read_query,
    text,
)

from .api_history import call_storage
from .api_nodes import find_node
from .middleware import SERVER_KEY
from .openapi import ref
from .routes import PRINCIPAL_KEY

MAX_WAIT = 60.0
"""Seconds ``GET /api/commands/{id}?wait=…`` may hold the request open."""

_REJECTION_STATUS = {"node_not_found": NotFound, "node_offline": Conflict, "not_commandable": Conflict}


def _ttl(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise vol.Invalid("expected a number of seconds")
    if not 1 <= value <= MAX_TTL:
        raise vol.Invalid(f"must be between 1 and {MAX_TTL:g} seconds")
    return float(value)


COMMAND_BODY = vol.Schema(
    {
        vol.Required("action"): text(64, min_length=1),
        vol.Optional("params", default=dict): dict,
        vol.Optional("priority", default=DEFAULT_PRIORITY): json_int(MIN_PRIORITY, MAX_PRIORITY),
        vol.Optional("ttl", default=DEFAULT_TTL): _ttl,
        vol.Optional("offline_policy", default=OFFLINE_QUEUE): vol.In(OFFLINE_POLICIES),
    }
)
LIST_QUERY = vol.Schema(
    {
        vol.Optional("node_id"): text(100, min_length=1),
        vol.Optional("status"): vol.In(STATUSES),
        vol.Optional("before"): vol.All(vol.Coerce(float), vol.Range(min=0)),
        vol.Optional("limit", default=100): vol.All(vol.Coerce(int), vol.Range(min=1, max=1000)),
    }
)
GET_QUERY = vol.Schema({vol.Optional("wait"): vol.All(vol.Coerce(float), vol.Range(min=0, max=MAX_WAIT))})


def sender_of(request: web.Request) -> str:
    """Who sends a command (or cancels one): the signed-in user."""
    principal = request[PRINCIPAL_KEY]
    return principal.user.username


def rejection(err: CommandRejected) -> ApiError:
    """The API error for a command ``hub.commands`` refused."""
    return _REJECTION_STATUS.get(err.code, BadRequest)(str(err), code=err.code)


async def create_command(request: web.Request) -> web.Response:
    """Validate and queue a command to one node; 201 with the command (follow it by its ``id``)."""
    hub = request.app[SERVER_KEY].hub
    node = find_node(hub, request.match_info["node_id"])
    body = await read_json(request, COMMAND_BODY)
    try:
        command = hub.commands.submit(
            node.node_id,
            body["action"],
            body["params"],
            sender=sender_of(request),
            priority=body["priority"],
            ttl=body["ttl"],
            offline_policy=body["offline_policy"],
        )
    except CommandRejected as err:
        raise rejection(err) from None
    return json_response(command.as_dict(), status=201)


async def get_command(request: web.Request) -> web.Response:
    """One command; with ``wait=S`` the answer waits up to S seconds for its verdict."""
    hub = request.app[SERVER_KEY].hub
    command_id = request.match_info["command_id"]
    params = read_query(request, GET_QUERY)
    live = hub.commands.get(command_id)
    if live is not None:
        if params.get("wait") and not live.done:
            live = await hub.commands.wait_done(command_id, params["wait"])
        return json_response(live.as_dict())
    stored = await call_storage(hub, "command", {"id": command_id[:64]})
    if stored is None:
        raise NotFound(f"no command {command_id!r}", code="command_not_found")
    return json_response(stored)


async def list_commands(request: web.Request) -> web.Response:
    """Commands newest first, by node and status; page with ``before`` = the last one's ``created``."""
    hub = request.app[SERVER_KEY].hub
    params = read_query(request, LIST_QUERY)
    if "node_id" in params:
        params["node_id"] = find_node(hub, params["node_id"]).node_id
    return json_response({"commands": await call_storage(hub, "commands", params)})


async def cancel_command(request: web.Request) -> web.Response:
    """Withdraw a command that has no verdict yet (one already sent may still have reached the node)."""
    hub = request.app[SERVER_KEY].hub
    try:
        command = hub.commands.cancel(request.match_info["command_id"], by=sender_of(request))
    except CommandNotFound as err:
        raise NotFound(str(err), code="command_not_found") from None
    except CommandRejected as err:
        raise Conflict(str(err), code=err.code) from None
    return json_response(command.as_dict())


async def list_actions(request: web.Request) -> web.Response:
    """The actions commands may carry (built-in and added by plugins)."""
    actions = request.app[SERVER_KEY].hub.commands.actions.list()
    body = [
        {"name": a.name, "description": a.description, "owner": a.owner, "params": _param_names(a.schema)}
        for a in actions
    ]
    return json_response({"actions": body})


def _param_names(schema: vol.Schema) -> list[dict[str, Any]]:
    """The top-level params of an action's schema, so a client knows which actions need a form."""
    if not isinstance(schema.schema, dict):
        return [{"name": "*", "required": False}]  # a custom validator: params are free-form
    return [
        {"name": str(key.schema if isinstance(key, vol.Marker) else key), "required": isinstance(key, vol.Required)}
        for key in schema.schema
    ]


_NODE_ID = path_param("node_id", "node id (for ESP32 nodes the MAC, in any common spelling)")
COMMAND_PROPERTIES = {
    "action": {"type": "string", "minLength": 1, "maxLength": 64},
    "params": {"type": "object"},
    "priority": {"type": "integer", "minimum": MIN_PRIORITY, "maximum": MAX_PRIORITY},
    "ttl": {"type": "number", "minimum": 1, "maximum": MAX_TTL},
    "offline_policy": {"type": "string", "enum": list(OFFLINE_POLICIES)},
}
"""The OpenAPI properties of a command body (:data:`COMMAND_BODY`)."""
_COMMAND_ID = path_param("command_id", "the command's id")

ROUTES = [
    Route(
        "POST",
        "/api/nodes/{node_id}/commands",
        create_command,
        doc=operation(
            "Send a command to a node",
            tag="commands",
            params=[_NODE_ID],
            body={
                "type": "object",
                "required": ["action"],
                "properties": COMMAND_PROPERTIES,
                "additionalProperties": False,
            },
            ok=ref("Command"),
            status=201,
            errors=(409,),
        ),
    ),
    Route(
        "GET",
        "/api/commands",
        list_commands,
        doc=operation(
            "List commands",
            tag="commands",
            params=[
                query_param("node_id", {"type": "string", "minLength": 1, "maxLength": 100}, "only this node's"),
                query_param("status", {"type": "string", "enum": list(STATUSES)}, "only in this status"),
                query_param("before", {"type": "number", "minimum": 0}, "only created before this epoch time"),
                query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many (100)"),
            ],
            ok=ref("CommandList"),
            errors=(404, 503),
        ),
    ),
    Route(
        "GET",
        "/api/commands/{command_id}",
        get_command,
        doc=operation(
            "A command",
            tag="commands",
            params=[
                _COMMAND_ID,
                query_param(
                    "wait", {"type": "number", "minimum": 0, "maximum": MAX_WAIT}, "wait up to S s for its verdict"
                ),
            ],
            ok=ref("Command"),
            errors=(503,),
        ),
    ),
    Route(
        "POST",
        "/api/commands/{command_id}/cancel",
        cancel_command,
        doc=operation("Cancel a command", tag="commands", params=[_COMMAND_ID], ok=ref("Command"), errors=(409,)),
    ),
    Route(
        "GET",
        "/api/actions",
        list_actions,
        doc=operation("Actions commands may carry", tag="commands", ok=ref("ActionList")),
    ),
]
