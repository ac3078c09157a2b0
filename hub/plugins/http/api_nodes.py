"""``/api/nodes``: list and filter the fleet, a node with its entities, rename/describe/place/tag, delete.

The list comes in pages (``limit``, ``cursor``; see :mod:`.node_pages`).
Reads come straight from the in-memory registry (no database round trip);
changes go through the registry, whose events storage persists and the
WebSocket streams.  Areas and tags are normalised by the registry
(:func:`hub.normalize_area`, :func:`hub.normalize_tags`); filtering by them
uses :func:`hub.select_nodes`, so a filter and a command target select alike.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from hub import (
    MAX_AREA_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    STATUS_UNKNOWN,
    Hub,
    InvalidMac,
    Node,
    normalize_area,
    normalize_mac,
    normalize_tags,
)
from hub.web import (
    JSON_CONTENT_TYPE,
    BadRequest,
    NotFound,
    Route,
    int_in,
    operation,
    path_param,
    query_param,
    read_json,
    read_query,
    text,
)

from .middleware import SERVER_KEY
from .node_pages import DEFAULT_LIMIT, MAX_LIMIT, PAGE_ENTITIES, encode_node, encode_page, select_page
from .openapi import ref

STATUSES = (STATUS_ONLINE, STATUS_OFFLINE, STATUS_UNKNOWN)


def area_value(value: Any) -> str | None:
    """An area as the registry stores it (None: no area), or vol.Invalid saying what is wrong."""
    try:
        return normalize_area(value)
    except ValueError as err:
        raise vol.Invalid(str(err)) from None


def tag_list(value: Any) -> list[str]:
    """A list of tags as the registry stores them; more than MAX_TAGS given is refused even with duplicates."""
    if not isinstance(value, list):
        raise vol.Invalid("expected a list of tags")
    if len(value) > MAX_TAGS:
        raise vol.Invalid(f"at most {MAX_TAGS} tags")
    try:
        return normalize_tags(value)
    except ValueError as err:
        raise vol.Invalid(str(err)) from None


def tag_filter(value: Any) -> list[str]:
    """``beta,relay-board`` (a query string; a list over the WebSocket) → the tags a node must all carry."""
    return tag_list(value.split(",") if isinstance(value, str) else value)


def area_filter(value: Any) -> str:
    """An area to select by (null is not one)."""
    area = area_value(value)
    if area is None:
        raise vol.Invalid("expected an area")
    return area


NODE_FILTERS = {
    vol.Optional("status"): vol.In(STATUSES),
    vol.Optional("q"): text(100, strip=False),
    vol.Optional("area"): area_filter,
    vol.Optional("tag"): tag_filter,
}
"""What ``GET /api/nodes`` and the WebSocket's ``get_nodes`` filter by."""
CURSOR = text(100, min_length=1, strip=False)
"""A page's ``next``: the id of its last node."""
LIST_QUERY = vol.Schema(
    {**NODE_FILTERS, vol.Optional("limit", default=DEFAULT_LIMIT): int_in(1, MAX_LIMIT), vol.Optional("cursor"): CURSOR}
)
PATCH_BODY = vol.Schema(
    {
        vol.Optional("name"): text(100, min_length=1),
        vol.Optional("description"): text(1000),
        vol.Optional("area"): area_value,
        vol.Optional("tags"): tag_list,
        vol.Optional("add_tags"): tag_list,
        vol.Optional("remove_tags"): tag_list,
    }
)


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


def json_body(body: bytes) -> web.Response:
    """A JSON response of already encoded bytes."""
    return web.Response(body=body, content_type=JSON_CONTENT_TYPE)


async def list_nodes(request: web.Request) -> web.Response:
    """A page of nodes (with entities and current states) in id order, optionally filtered; ``next`` for the rest."""
    hub = request.app[SERVER_KEY].hub
    query = read_query(request, LIST_QUERY)
    page = select_page(hub, query, query.pop("cursor", None), query.pop("limit"))
    return json_body(await encode_page(hub, page))


async def get_node(request: web.Request) -> web.Response:
    """One node with its entities and their current states."""
    return json_body(encode_node(find_node(request.app[SERVER_KEY].hub, request.match_info["node_id"])))


async def patch_node(request: web.Request) -> web.Response:
    """Rename, describe, place (area) or tag a node; ``add_tags``/``remove_tags`` change tags in place."""
    hub = request.app[SERVER_KEY].hub
    node = find_node(hub, request.match_info["node_id"])
    changes = await read_json(request, PATCH_BODY)
    if not changes:
        raise BadRequest("give at least one of: name, description, area, tags, add_tags, remove_tags")
    added, removed = changes.pop("add_tags", None), changes.pop("remove_tags", None)
    if added is not None or removed is not None:
        if "tags" in changes:
            raise BadRequest("give either tags (the whole list) or add_tags/remove_tags, not both")
        changes["tags"] = sorted((set(node.tags) | set(added or ())) - set(removed or ()))
    try:
        hub.registry.update_node(node, **changes)
    except ValueError as err:  # e.g. more than MAX_TAGS once the added ones are counted
        raise BadRequest(str(err)) from None
    return json_body(encode_node(node))


async def delete_node(request: web.Request) -> web.Response:
    """Forget a node (it registers again if it keeps publishing)."""
    hub = request.app[SERVER_KEY].hub
    node = find_node(hub, request.match_info["node_id"])
    hub.registry.remove(node.node_id)
    return web.Response(status=204)


_NODE_ID = path_param("node_id", "node id (for ESP32 nodes the MAC, in any common spelling)")
AREA_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_AREA_LENGTH}
TAGS_SCHEMA = {
    "type": "array",
    "maxItems": MAX_TAGS,
    "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_LENGTH},
}

ROUTES = [
    Route(
        "GET",
        "/api/nodes",
        list_nodes,
        doc=operation(
            "List nodes, a page at a time",
            tag="nodes",
            params=[
                query_param(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                    f"at most this many nodes (a page also ends once it holds about {PAGE_ENTITIES:,} entities)",
                ),
                query_param(
                    "cursor",
                    {"type": "string", "minLength": 1, "maxLength": 100},
                    "the `next` of the previous page (pages go in node id order)",
                ),
                query_param("status", {"type": "string", "enum": list(STATUSES)}, "only nodes in this status"),
                query_param("q", {"type": "string", "maxLength": 100}, "name or id contains this (case-insensitive)"),
                query_param("area", AREA_SCHEMA, "only nodes in this area (case-insensitive)"),
                query_param(
                    "tag",
                    {"type": "string", "minLength": 1, "maxLength": MAX_TAGS * (MAX_TAG_LENGTH + 1)},
                    "only nodes with this tag; several separated by commas: nodes with all of them",
                ),
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
            "Rename, describe, place or tag a node",
            tag="nodes",
            params=[_NODE_ID],
            body={
                "type": "object",
                "minProperties": 1,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"},
                    "description": {"type": "string", "maxLength": 1000},
                    "area": {**AREA_SCHEMA, "nullable": True, "description": "null: no area"},
                    "tags": {**TAGS_SCHEMA, "description": "the node's tags (replaces them)"},
                    "add_tags": {**TAGS_SCHEMA, "description": "tags to add (not with tags)"},
                    "remove_tags": {**TAGS_SCHEMA, "description": "tags to remove (not with tags)"},
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
