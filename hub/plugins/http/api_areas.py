"""``GET /api/areas``: how the fleet is organised, the areas and tags in use with their nodes' statuses.

What a fleet page groups by: one entry per area (areas that differ only in
case are one, named as most of its nodes spell it), the nodes with no area,
and one entry per tag, each with how many of its nodes are online, offline
or unknown.  Computed from the in-memory registry on each request.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

from hub import STATUS_OFFLINE, STATUS_ONLINE, STATUS_UNKNOWN, Node
from hub.web import Route, json_response, operation

from .middleware import SERVER_KEY
from .openapi import ref

COUNTED = (STATUS_ONLINE, STATUS_OFFLINE, STATUS_UNKNOWN)


class _Group:
    """Nodes of one area or tag: their statuses, and (for areas) how each spelling is used."""

    __slots__ = ("spellings", "statuses")

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.spellings: Counter[str] = Counter()

    def add(self, node: Node, spelling: str | None = None) -> None:
        self.statuses[node.status] += 1
        if spelling is not None:
            self.spellings[spelling] += 1

    def counts(self) -> dict[str, int]:
        return {"total": sum(self.statuses.values()), **{status: self.statuses[status] for status in COUNTED}}

    def name(self) -> str:
        """The spelling most nodes use (ties: the first in sort order)."""
        return min(self.spellings, key=lambda spelling: (-self.spellings[spelling], spelling))


def fleet_structure(nodes: list[Node]) -> dict[str, Any]:
    """The body of ``GET /api/areas``."""
    areas: dict[str, _Group] = {}
    tags: dict[str, _Group] = {}
    no_area = _Group()
    for node in nodes:
        if node.area is None:
            no_area.add(node)
        else:
            areas.setdefault(node.area.casefold(), _Group()).add(node, node.area)
        for tag in node.tags:
            tags.setdefault(tag, _Group()).add(node)
    return {
        "areas": [{"area": areas[key].name(), **areas[key].counts()} for key in sorted(areas)],
        "no_area": no_area.counts(),
        "tags": [{"tag": tag, **tags[tag].counts()} for tag in sorted(tags)],
    }


async def list_areas(request: web.Request) -> web.Response:
    """Areas and tags in use, with their nodes' statuses."""
    return json_response(fleet_structure(list(request.app[SERVER_KEY].hub.registry)))


ROUTES = [
    Route(
        "GET",
        "/api/areas",
        list_areas,
        doc=operation("Areas and tags in use, with node counts", tag="nodes", ok=ref("Areas")),
    ),
]
