"""Pages of the fleet for ``GET /api/nodes`` and the WebSocket's ``get_nodes``: bounded, in id order, cheap to encode.

A whole-fleet answer in one piece held the event loop for seconds at 10,000
nodes and made a single response of tens of megabytes, so the fleet is read in
pages:

* **Order and cursor.** Nodes come in node id order (the registry keeps the ids
  sorted: no sort per request), and ``next`` is the id of the page's last node:
  the next page starts after it, so nodes registered or removed in between are
  neither repeated nor skipped (a new node sorting before the cursor appears in
  the events instead).  ``next`` is null on the last page.
* **Size.** At most ``limit`` nodes (:data:`DEFAULT_LIMIT`, at most
  :data:`MAX_LIMIT`), and a page ends early once it holds :data:`PAGE_ENTITIES`
  entities, so its size is bounded whatever the nodes hold.
* **Encoding.** The live nodes and entities are turned into plain dicts that
  share their attribute and state values (no copies) and serialised by orjson;
  every :data:`CHUNK_ENTITIES` entities the encoder yields to the event loop,
  so no request holds it for more than a few milliseconds.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from hub import Entity, Hub, Node, Target, select_nodes

DEFAULT_LIMIT = 500
"""Nodes per page when the client gives no ``limit``."""
MAX_LIMIT = 1000
"""The largest ``limit`` accepted."""
PAGE_ENTITIES = 5000
"""A page ends after the node that brings its entities to this many (about 1 MB of JSON)."""
CHUNK_ENTITIES = 250
"""Entities encoded between two yields to the event loop (a few milliseconds of work at most)."""

_OPTIONS = orjson.OPT_NON_STR_KEYS


@dataclass(slots=True)
class Page:
    """The nodes of one page and the cursor of the next (None: this is the last)."""

    nodes: list[Node]
    next: str | None


def _matching(hub: Hub, filters: dict[str, Any], cursor: str | None) -> Iterator[Node]:
    """The nodes after ``cursor`` (in id order) that pass every filter of :data:`~.api_nodes.NODE_FILTERS`."""
    target: Target = {}
    if "area" in filters:
        target["area"] = filters["area"]
    if "tag" in filters:
        target["tags"] = filters["tag"]
    candidates: Iterable[Node]
    if target:
        selected = select_nodes(hub.registry, target)  # sorted by id
        start = 0 if cursor is None else bisect_right(selected, cursor, key=_node_id)
        candidates = selected[start:]
    else:
        candidates = hub.registry.nodes_after(cursor)
    status = filters.get("status")
    needle = filters["q"].casefold() if filters.get("q") else None
    for node in candidates:
        if (status is None or node.status == status) and (
            needle is None or needle in node.name.casefold() or needle in node.node_id
        ):
            yield node


def select_page(hub: Hub, filters: dict[str, Any], cursor: str | None, limit: int) -> Page:
    """The page after ``cursor``: at most ``limit`` nodes and about :data:`PAGE_ENTITIES` entities."""
    nodes: list[Node] = []
    entities = 0
    for node in _matching(hub, filters, cursor):
        if len(nodes) >= limit or entities >= PAGE_ENTITIES:
            return Page(nodes, nodes[-1].node_id)  # one more node matches: there is a next page
        nodes.append(node)
        entities += len(node.entities)
    return Page(nodes, None)


def _node_id(node: Node) -> str:
    return node.node_id


def entity_json(entity: Entity) -> dict[str, Any]:
    """The entity as the API shows it (the keys of :meth:`hub.Entity.as_dict`), sharing its values: encode at once."""
    return {
        "key": entity.key,
        "platform": entity.platform,
        "name": entity.name,
        "unit": entity.unit,
        "device_class": entity.device_class,
        "state_class": entity.state_class,
        "attributes": entity.attributes,
        "state": entity.state,
        "last_changed": entity.last_changed,
        "last_reported": entity.last_reported,
    }


def node_json(node: Node, entities: Iterable[Entity] | None = None) -> dict[str, Any]:
    """The node as the API shows it (the keys of :meth:`hub.Node.as_dict`, ``entities`` last), sharing its values."""
    return {
        "node_id": node.node_id,
        "name": node.name,
        "status": node.status,
        "status_reason": node.status_reason,
        "status_since": node.status_since,
        "first_seen": node.first_seen,
        "last_seen": node.last_seen,
        "firmware_version": node.firmware_version,
        "description": node.description,
        "area": node.area,
        "tags": node.tags,
        "attributes": node.attributes,
        "entities": [entity_json(entity) for entity in (node.entities.values() if entities is None else entities)],
    }


def dumps(data: Any) -> bytes:
    """JSON as the API writes it (values JSON cannot hold become strings rather than failing the request)."""
    return orjson.dumps(data, default=str, option=_OPTIONS)


def encode_node(node: Node) -> bytes:
    """One node, synchronously (``GET /api/nodes/{id}``: one node's entities are bounded by the limits)."""
    return dumps(node_json(node))


async def encode_nodes(nodes: list[Node]) -> bytes:
    """A JSON array of ``nodes``, yielding to the loop every :data:`CHUNK_ENTITIES` entities.

    A node with more entities than a chunk (one restored from before the limits) is itself
    encoded in slices.  What changes while the encoder yields is what the event stream reports
    next, so a WebSocket client holds back events until its page is sent (see websocket.py).
    """
    parts: list[bytes] = []
    budget = CHUNK_ENTITIES
    for node in nodes:
        entities = list(node.entities.values())
        if len(entities) <= CHUNK_ENTITIES:
            parts.append(dumps(node_json(node, entities)))
            budget -= len(entities) + 1
        else:
            head = dumps(node_json(node, ()))  # ...,"entities":[]}
            slices = []
            for start in range(0, len(entities), CHUNK_ENTITIES):
                if budget <= 0:
                    await asyncio.sleep(0)
                    budget = CHUNK_ENTITIES
                chunk = entities[start : start + CHUNK_ENTITIES]
                slices.append(dumps([entity_json(entity) for entity in chunk])[1:-1])
                budget -= len(chunk)
            parts.append(head[:-2] + b",".join(slices) + b"]}")
        if budget <= 0:
            await asyncio.sleep(0)
            budget = CHUNK_ENTITIES
    return b"[" + b",".join(parts) + b"]"


async def encode_page(hub: Hub, page: Page) -> bytes:
    """The body of ``GET /api/nodes`` (and the ``result`` of ``get_nodes``): nodes, counts, total, next."""
    nodes = await encode_nodes(page.nodes)
    rest = dumps({"counts": hub.registry.count_by_status(), "total": len(hub.registry), "next": page.next})
    return b'{"nodes":' + nodes + b"," + rest[1:]
