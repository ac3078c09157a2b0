"""Loading the fleet back into the registry at startup: nodes, their status, entities and last readings.

Three queries, whatever the fleet size.  The latest reading of each node is
found with an index lookup per node (``max(ts)`` on the (node, ts) index,
which both PostgreSQL and SQLite answer from the index alone), not by
scanning the telemetry table.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import Entity, Node, normalize_tags

from .schema import entities, nodes, telemetry


@dataclass(slots=True)
class Restored:
    """What the database held: nodes ready for ``registry.restore`` and the caches the writer needs."""

    nodes: list[Node]
    ids: dict[str, int]
    """node_id -> nodes.id."""
    last_seen: dict[str, float]
    """node_id -> nodes.last_seen as stored."""


def _latest_readings_query() -> sa.Select:
    inner = telemetry.alias("newest")
    newest = sa.select(sa.func.max(inner.c.ts)).where(inner.c.node_ref == nodes.c.id).scalar_subquery()
    return sa.select(telemetry.c.node_ref, telemetry.c.ts, telemetry.c.states).select_from(
        nodes.join(telemetry, sa.and_(telemetry.c.node_ref == nodes.c.id, telemetry.c.ts == newest))
    )


def _tags(stored: object) -> list[str]:
    """The stored tags, re-normalised: a row edited by hand (or by an older hub) must not poison the registry."""
    if not isinstance(stored, list):
        return []
    try:
        return normalize_tags(tag for tag in stored if isinstance(tag, str))
    except ValueError:
        return []


async def load(engine: AsyncEngine) -> Restored:
    """Read every node with its entities, and set each entity's state from its node's newest reading."""
    async with engine.connect() as conn:
        node_rows = (await conn.execute(sa.select(nodes))).mappings().all()
        entity_rows = (await conn.execute(sa.select(entities))).mappings().all()
        latest = (await conn.execute(_latest_readings_query())).all()
    by_ref: dict[int, Node] = {}
    ids: dict[str, int] = {}
    last_seen: dict[str, float] = {}
    for row in node_rows:
        node = Node(
            node_id=row["node_id"],
            name=row["name"],
            status=row["status"],
            status_reason=row["status_reason"],
            status_since=row["status_since"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            firmware_version=row["firmware_version"],
            description=row["description"],
            attributes=dict(row["attributes"] or {}),
            area=row["area"],
            tags=_tags(row["tags"]),
        )
        by_ref[row["id"]] = node
        ids[node.node_id] = row["id"]
        if node.last_seen is not None:
            last_seen[node.node_id] = node.last_seen
    for row in entity_rows:
        owner = by_ref.get(row["node_ref"])
        if owner is not None:
            owner.entities[row["key"]] = Entity(
                key=row["key"],
                platform=row["platform"],
                name=row["name"],
                unit=row["unit"],
                device_class=row["device_class"],
                state_class=row["state_class"],
                attributes=dict(row["attributes"] or {}),
            )
    for node_ref, ts, states in latest:
        owner = by_ref.get(node_ref)
        if owner is None or not isinstance(states, dict):
            continue
        for key, value in states.items():
            entity = owner.entities.get(key)
            if entity is not None:
                entity.state = value
                entity.last_changed = entity.last_reported = ts
    return Restored(list(by_ref.values()), ids, last_seen)
