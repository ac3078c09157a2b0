"""``/api/nodes``: list and filter the fleet, a node with its entities, rename/describe, delete.

Reads come straight from the in-memory registry (no database round trip);
changes go through the registry, whose events storage persists and the
WebSocket streams.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import voluptuous as vol
from aiohttp import web

from hub import STATUS_OFFLINE, STATUS_ONLINE, STATUS_UNKNOWN, Hub, InvalidMac, Node, normalize_mac

from .errors import BadRequest, NotFound
from .middleware import SERVER_KEY
from .openapi import operation, path, query, ref
from .routes import Route
from .validation import json_response, read_json, read_query, text

STATUSES = (STATUS_ONLINE, STATUS_OFFLINE, STATUS_UNKNOWN)

LIST_QUERY = vol.Schema({vol.Optional("status"): vol.In(STATUSES), vol.Optional("q"): text(100, strip=False)})
PATCH_BODY = vol.Schema({vol.Optional("name"): text(100, min_length=1), vol.Optional("description"): text(1000)})


def find_node(hub: Hub, node_id: str) -> Node:
    """The node with that id; a MAC in any accepted spelling also finds its node.  NotFound otherwise."""
    node = hub.registry.get(node_id)
    if node is None:
        try:
            node = hub.registry.get(normalize_mac(node_id))
        except InvalidMac:
            node = None
    if node is None:
        raise NotFound(f"no node {node_id!r}", code="node_not_found")
    return node


def filter_nodes(nodes: Iterable[Node], status: str | None = None, q: str | None = None) -> list[Node]:
    """Nodes in ``status`` whose name or id contains ``q`` (case-insensitive), sorted by name."""
    needle = q.casefold() if q else None
    selected = [
        node
        for node in nodes
        if (status is None or node.status == status)
        and (needle is None or needle in node.name.casefold() or needle in node.node_id)
    ]
    return sorted(selected, key=lambda node: (node.name.casefold(), node.node_id))


def node_list(hub: Hub, status: str | None = None, q: str | None = None) -> dict[str, Any]:
    """The body of ``GET /api/nodes`` (also the WebSocket's ``get_nodes`` result)."""
    nodes = filter_nodes(hub.registry, status, q)
    return {
        "nodes": [node.as_dict() for node in nodes],
        "counts": hub.registry.count_by_status(),
        "total": len(hub.registry),
    }


async def list_nodes(request: web.Request) -> web.Response:
    """Every node (with entities and current states), optionally filtered."""
    params = read_query(request, LIST_QUERY)
    return json_response(node_list(request.app[SERVER_KEY].hub, params.get("status"), params.get("q")))


async def get_node(request: web.Request) -> web.Response:
    """One node with its entities and their current states."""
    return json_response(find_node(request.app[SERVER_KEY].hub, request.match_info["node_id"]).as_dict())


async def patch_node(request: web.Request) -> web.Response:
    """Rename or describe a node."""
    hub = request.app[SERVER_KEY].hub
    node = find_node(hub, request.match_info["node_id"])
    changes = await read_json(request, PATCH_BODY)
    if not changes:
        raise BadRequest("give at least one of: name, description")
    hub.registry.update_node(node, **changes)
    return json_response(node.as_dict())


async def delete_node(request: web.Request) -> web.Response:
    """Forget a node (it registers again if it keeps publishing)."""
    hub = request.app[SERVER_KEY].hub
    node = find_node(hub, request.match_info["node_id"])
    hub.registry.remove(node.node_id)
    return web.Response(status=204)


_NODE_ID = path("node_id", "node id (for ESP32 nodes the MAC, in any common spelling)")

ROUTES = [
    Route(
        "GET",
        "/api/nodes",
        list_nodes,
        doc=operation(
            "List nodes",
            tag="nodes",
            params=[
                query("status", {"type": "string", "enum": list(STATUSES)}, "only nodes in this status"),
                query("q", {"type": "string", "maxLength": 100}, "name or id contains this (case-insensitive)"),
            ],
            ok=ref("NodeList"),
        ),
    ),
    Route(
        "GET", "/api/nodes/{node_id}", get_node, doc=operation("A node", tag="nodes", params=[_NODE_ID], ok=ref("Node"))
    ),
    Route(
        "PATCH",
        "/api/nodes/{node_id}",
        patch_node,
        doc=operation(
            "Rename or describe a node",
            tag="nodes",
            params=[_NODE_ID],
            body={
                "type": "object",
                "minProperties": 1,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"},
                    "description": {"type": "string", "maxLength": 1000},
                },
                "additionalProperties": False,
            },
            ok=ref("Node"),
        ),
    ),
    Route(
        "DELETE",
        "/api/nodes/{node_id}",
        delete_node,
        doc=operation("Delete a node", tag="nodes", params=[_NODE_ID], ok=None, status=204),
    ),
]
