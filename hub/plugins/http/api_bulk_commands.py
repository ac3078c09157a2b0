"""``POST /api/commands``: one command to every node a target selects (a tag, an area, a list, "not on V").

The target is resolved by :func:`hub.select_nodes`, as an OTA rollout resolves
its own, and each selected node gets its own command through
``hub.commands.submit``, with its own id and lifecycle.  The action and params
are checked once, before anything is queued, so a bad request queues nothing;
a node that cannot take the command (no integration reaches it, it is offline
under ``offline_policy: refuse``) is listed under ``refused`` and the others
still get theirs.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from hub import CommandRejected, InvalidTarget, select_nodes
from hub.web import BadRequest, Conflict, NotFound, Route, json_response, operation, read_json

from .api_commands import COMMAND_BODY, COMMAND_PROPERTIES, rejection, sender_of
from .api_nodes import AREA_SCHEMA, TAGS_SCHEMA, area_filter, tag_list
from .middleware import SERVER_KEY
from .openapi import ref

MAX_TARGET_NODES = 10_000
"""Node ids one target may list."""


def _word(max_length: int) -> vol.All:
    """A non-blank string of at most ``max_length`` characters as sent (then stripped)."""
    return vol.All(str, vol.Length(min=1, max=max_length), vol.Strip, vol.Length(min=1))


TARGET = vol.Schema(
    {
        vol.Optional("nodes"): vol.All([_word(100)], vol.Length(max=MAX_TARGET_NODES)),
        vol.Optional("tags"): tag_list,
        vol.Optional("area"): area_filter,
        vol.Optional("not_version"): _word(64),
    }
)
BULK_BODY = COMMAND_BODY.extend({vol.Required("target"): TARGET})


async def create_commands(request: web.Request) -> web.Response:
    """Submit one command per selected node; returns those queued and the nodes that refused."""
    hub = request.app[SERVER_KEY].hub
    body = await read_json(request, BULK_BODY)
    try:
        nodes = select_nodes(hub.registry, body["target"])
    except InvalidTarget as err:
        raise (NotFound if err.code == "node_not_found" else BadRequest)(str(err), code=err.code) from None
    if not nodes:
        raise Conflict("the target selects no node", code="empty_target")
    try:
        hub.commands.actions.validate(body["action"], body["params"])
    except CommandRejected as err:
        raise rejection(err) from None
    sender = sender_of(request)
    commands: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    for node in nodes:
        try:
            command = hub.commands.submit(
                node.node_id,
                body["action"],
                body["params"],
                sender=sender,
                priority=body["priority"],
                ttl=body["ttl"],
                offline_policy=body["offline_policy"],
            )
        except CommandRejected as err:
            refused.append({"node_id": node.node_id, "code": err.code, "message": str(err)})
        else:
            commands.append(command.as_dict())
    return json_response({"commands": commands, "refused": refused})


_TARGET_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "description": "every key given must hold for a node to be selected",
    "properties": {
        "nodes": {
            "type": "array",
            "maxItems": MAX_TARGET_NODES,
            "items": {"type": "string", "minLength": 1, "maxLength": 100},
            "description": "these nodes (ids, or MACs in any spelling)",
        },
        "tags": {**TAGS_SCHEMA, "description": "nodes with every one of these tags"},
        "area": {**AREA_SCHEMA, "description": "nodes in this area (case-insensitive)"},
        "not_version": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "nodes whose firmware is not this version",
        },
    },
    "additionalProperties": False,
}

ROUTES = [
    Route(
        "POST",
        "/api/commands",
        create_commands,
        doc=operation(
            "Send a command to every node a target selects",
            tag="commands",
            body={
                "type": "object",
                "required": ["target", "action"],
                "properties": {"target": _TARGET_SCHEMA, **COMMAND_PROPERTIES},
                "additionalProperties": False,
            },
            ok=ref("BulkCommands"),
            errors=(404, 409),
        ),
    ),
]
