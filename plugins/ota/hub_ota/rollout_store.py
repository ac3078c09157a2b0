"""Rollouts in the database: created in one transaction with their nodes, updated in batches, read back at start.

The engine keeps active rollouts in memory and writes what changed every few tenths of a second
(:meth:`RolloutStore.save`), so a rollout of a thousand nodes costs a handful of transactions a second, not one
per node change; a graceful stop writes the rest. The database is what the API reads for finished rollouts, what
manifests consult, and what a restarted hub carries on from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from hub import Database

from .rollout_model import ACTIVE, COMPLETED, IN_FLIGHT, SUCCEEDED, NodeProgress, Rollout
from .schema import rollout_nodes as nodes_table
from .schema import rollouts as rollouts_table

_ROLLOUT_STATE = ("status", "stage", "reason", "baseline", "history", "updated_at", "finished_at")
_NODE_STATE = (
    "position",
    "status",
    "attempts",
    "command_id",
    "from_version",
    "deadline",
    "retry_at",
    "went_away",
    "started_at",
    "finished_at",
    "updated_at",
    "detail",
    "link",
)


class RolloutStore:
    """Reads and writes rollouts; see the module docstring."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, rollout: Rollout) -> None:
        """Store a new rollout and all its nodes."""
        async with self._database.begin() as conn:
            await conn.execute(sa.insert(rollouts_table).values(**_rollout_row(rollout)))
            rows = [{"rollout_id": rollout.id, **_node_row(node)} for node in rollout.nodes.values()]
            if rows:
                await conn.execute(sa.insert(nodes_table), rows)

    async def save(self, rollout: Rollout, nodes: Iterable[NodeProgress]) -> None:
        """Write the rollout's state and the given nodes' progress, in one transaction."""
        state = {key: getattr(rollout, key) for key in _ROLLOUT_STATE}
        params = [
            {"b_rollout": rollout.id, "b_node": node.node_id, **{f"v_{key}": getattr(node, key) for key in _NODE_STATE}}
            for node in nodes
        ]
        async with self._database.begin() as conn:
            await conn.execute(sa.update(rollouts_table).where(rollouts_table.c.id == rollout.id).values(**state))
            if params:
                update = (
                    sa.update(nodes_table)
                    .where(nodes_table.c.rollout_id == sa.bindparam("b_rollout"))
                    .where(nodes_table.c.node_id == sa.bindparam("b_node"))
                    .values({key: sa.bindparam(f"v_{key}") for key in _NODE_STATE})
                )
                await conn.execute(update, params)

    async def load_active(self) -> list[Rollout]:
        """Every running or paused rollout with its nodes, oldest first."""
        query = (
            sa.select(rollouts_table).where(rollouts_table.c.status.in_(ACTIVE)).order_by(rollouts_table.c.created_at)
        )
        async with self._database.connect() as conn:
            rollouts = [_rollout(row._mapping) for row in await conn.execute(query)]
            for rollout in rollouts:
                nodes = await conn.execute(sa.select(nodes_table).where(nodes_table.c.rollout_id == rollout.id))
                for row in nodes:
                    node = _node(row._mapping)
                    rollout.nodes[node.node_id] = node
        return rollouts

    async def list(self, status: str | None = None, limit: int = 100) -> list[tuple[Rollout, dict[str, int], int]]:
        """Rollouts newest first (without nodes), each with its node counts by status and how many take turns."""
        query = sa.select(rollouts_table).order_by(rollouts_table.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(rollouts_table.c.status == status)
        async with self._database.connect() as conn:
            rollouts = [_rollout(row._mapping) for row in await conn.execute(query)]
            counts: dict[str, dict[str, int]] = {rollout.id: {} for rollout in rollouts}
            positioned = dict.fromkeys(counts, 0)
            if rollouts:
                grouped = await conn.execute(
                    sa.select(
                        nodes_table.c.rollout_id,
                        nodes_table.c.status,
                        sa.func.count(),
                        sa.func.count(nodes_table.c.position),
                    )
                    .where(nodes_table.c.rollout_id.in_(list(counts)))
                    .group_by(nodes_table.c.rollout_id, nodes_table.c.status)
                )
                for rollout_id, node_status, count, with_position in grouped:
                    counts[rollout_id][node_status] = count
                    positioned[rollout_id] += with_position
        return [(rollout, counts[rollout.id], positioned[rollout.id]) for rollout in rollouts]

    async def get(self, rollout_id: str) -> Rollout | None:
        """One rollout with its nodes, or None."""
        async with self._database.connect() as conn:
            row = (await conn.execute(sa.select(rollouts_table).where(rollouts_table.c.id == rollout_id))).first()
            if row is None:
                return None
            rollout = _rollout(row._mapping)
            for node_row in await conn.execute(sa.select(nodes_table).where(nodes_table.c.rollout_id == rollout_id)):
                node = _node(node_row._mapping)
                rollout.nodes[node.node_id] = node
        return rollout

    async def uses(self, sha256: str) -> list[str]:
        """Ids of the running or paused rollouts of that image."""
        query = sa.select(rollouts_table.c.id).where(
            rollouts_table.c.sha256 == sha256, rollouts_table.c.status.in_(ACTIVE)
        )
        async with self._database.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def released_to_node(self, node_id: str) -> str | None:
        """The image of the newest rollout that has given this node its turn (and did not end it), or None."""
        released = (*IN_FLIGHT, SUCCEEDED)
        query = (
            sa.select(rollouts_table.c.sha256)
            .join(nodes_table, nodes_table.c.rollout_id == rollouts_table.c.id)
            .where(nodes_table.c.node_id == node_id, nodes_table.c.status.in_(released))
            .order_by(rollouts_table.c.created_at.desc())
            .limit(1)
        )
        async with self._database.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def released_to_group(self, group: str) -> str | None:
        """The image of the newest completed rollout whose target names this tag or area, or None."""
        query = (
            sa.select(rollouts_table.c.sha256, rollouts_table.c.target)
            .where(rollouts_table.c.status == COMPLETED)
            .order_by(rollouts_table.c.created_at.desc())
        )
        async with self._database.connect() as conn:
            for sha256, target in await conn.execute(query):
                if group in (target.get("tags") or ()) or target.get("area") == group:
                    return sha256
        return None


def _rollout_row(rollout: Rollout) -> dict[str, Any]:
    return {
        "id": rollout.id,
        "name": rollout.name,
        "sha256": rollout.sha256,
        "version": rollout.version,
        "target": rollout.target,
        "stages": rollout.stages,
        "settings": rollout.settings,
        "created_by": rollout.created_by,
        "created_at": rollout.created_at,
        **{key: getattr(rollout, key) for key in _ROLLOUT_STATE},
    }


def _node_row(node: NodeProgress) -> dict[str, Any]:
    return {"node_id": node.node_id, **{key: getattr(node, key) for key in _NODE_STATE}}


def _rollout(row: Any) -> Rollout:
    return Rollout(**{key: row[key] for key in row.keys()})


def _node(row: Any) -> NodeProgress:
    return NodeProgress(**{key: row[key] for key in row.keys() if key != "rollout_id"})
