"""Read queries behind the ``storage.history`` and ``storage.status_history`` services.

History is downsampled in SQL: the window [start, end) is cut into ``points``
equal buckets and the database returns min/avg/max/count per bucket, so a
chart of 30 days of 30-second data moves 500 small rows, not 86,400 JSON
documents.  A reading counts when the key's value is a JSON number or a
boolean (true = 1, false = 0, so binary sensors chart too); strings and
missing keys are skipped.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import nodes, status_history

_NODE_REF = "(SELECT id FROM nodes WHERE node_id = :node_id)"

# The JSON value is extracted once per row, in the innermost query; the OFFSET 0 fences stop the
# planners from inlining it into every aggregate (which doubled the time).  Rows whose value is not a
# number give NULL, which the aggregates skip; HAVING drops buckets with nothing but such rows.
_HISTORY_SQL = {
    "postgresql": f"""
SELECT bucket, min(v), avg(v), max(v), count(v)
FROM (
    SELECT LEAST(floor((ts - :start) / :width)::int, :last) AS bucket,
           CASE jsonb_typeof(x) WHEN 'number' THEN x::float8 WHEN 'boolean' THEN x::boolean::int::float8 END AS v
    FROM (
        SELECT ts, states -> CAST(:key AS text) AS x
        FROM telemetry
        WHERE node_ref = {_NODE_REF} AND ts >= :start AND ts < :end
        OFFSET 0
    ) AS extracted
    OFFSET 0
) AS readings
GROUP BY bucket HAVING count(v) > 0 ORDER BY bucket
""",
    "sqlite": f"""
SELECT bucket, min(v), avg(v), max(v), count(v)
FROM (
    SELECT min(CAST((ts - :start) / :width AS INTEGER), :last) AS bucket,
           CASE WHEN typeof(x) IN ('integer', 'real') THEN x END AS v
    FROM (
        SELECT ts, json_extract(states, :path) AS x
        FROM telemetry
        WHERE node_ref = {_NODE_REF} AND ts >= :start AND ts < :end
        LIMIT -1 OFFSET 0
    )
    LIMIT -1 OFFSET 0
)
GROUP BY bucket HAVING count(v) > 0 ORDER BY bucket
""",
}


async def history(engine: AsyncEngine, node_id: str, key: str, start: float, end: float, points: int) -> dict[str, Any]:
    """min/avg/max/count of ``key`` per bucket over [start, end), at most ``points`` buckets, oldest first."""
    width = (end - start) / points
    params = {"node_id": node_id, "start": start, "end": end, "width": width, "last": points - 1}
    if engine.dialect.name == "sqlite":
        params["path"] = f'$."{key}"'
    else:
        params["key"] = key
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(_HISTORY_SQL[engine.dialect.name]), params)).all()
    return {
        "node_id": node_id,
        "key": key,
        "start": start,
        "end": end,
        "bucket_seconds": width,
        "buckets": [
            {"t": start + bucket * width, "min": low, "avg": mean, "max": high, "count": count}
            for bucket, low, mean, high, count in rows
        ],
    }


async def status_changes(
    engine: AsyncEngine, node_id: str, start: float | None, end: float | None, limit: int
) -> list[dict[str, Any]]:
    """A node's status changes in [start, end), newest first, at most ``limit``."""
    query = (
        sa.select(status_history.c.ts, status_history.c.old, status_history.c.new, status_history.c.reason)
        .join(nodes, nodes.c.id == status_history.c.node_ref)
        .where(nodes.c.node_id == node_id)
        .order_by(status_history.c.ts.desc(), status_history.c.id.desc())
        .limit(limit)
    )
    if start is not None:
        query = query.where(status_history.c.ts >= start)
    if end is not None:
        query = query.where(status_history.c.ts < end)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [dict(row) for row in rows]
