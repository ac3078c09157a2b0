"""Read queries behind the ``storage.history`` and ``storage.status_history`` services.

History is downsampled in SQL: the window [start, end) is cut into ``points``
equal buckets and the database returns min/avg/max/count per bucket, so a
chart of 30 days of 30-second data moves 500 small rows, not 86,400 JSON
documents.  A reading counts when the key's value is a JSON number or a
boolean (true = 1, false = 0, so binary sensors chart too); strings and
missing keys are skipped.

On PostgreSQL the buckets can come from the rollups instead (:mod:`.rollups`):
``resolution`` is ``raw``, ``1m``, ``1h`` or ``auto``, which takes the coarsest
rollup no wider than the requested bucket (a 30-day chart of 500 buckets,
5,184 s each, reads ``rollup_1h``: 720 rows instead of 86,400 JSON documents).
Each rollup bucket counts in the chart bucket its start falls in, so a chart
bucket's edges are exact to the rollup's width; the newest seconds (up to two
``rollup_interval``: the writer's epoch, then the fold) are not in the rollups yet.  SQLite has no
rollups and always answers from the raw rows (``resolution`` says which was used).
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .rollups import RESOLUTIONS as ROLLUP_WIDTHS
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


# A rollup bucket counts in the chart bucket its start falls in (the first one for a bucket begun before start).
_ROLLUP_SQL = f"""
SELECT GREATEST(LEAST(floor((bucket - :start) / :width)::int, :last), 0) AS b,
       min(min_v), sum(sum_v) / sum(n)::float8, max(max_v), sum(n)::bigint
FROM {{table}}
WHERE node_ref = {_NODE_REF} AND key = :key AND bucket >= :low AND bucket < :end
GROUP BY b ORDER BY b
"""

RESOLUTIONS = ("auto", "raw", *ROLLUP_WIDTHS)


def pick_resolution(dialect: str, resolution: str, width: float) -> str:
    """The table to answer from: ``raw`` on SQLite; for ``auto`` the coarsest rollup no wider than ``width``."""
    if dialect != "postgresql":
        return "raw"
    if resolution != "auto":
        return resolution
    fitting = [name for name, seconds in ROLLUP_WIDTHS.items() if seconds <= width]
    return max(fitting, key=ROLLUP_WIDTHS.__getitem__) if fitting else "raw"


async def history(
    engine: AsyncEngine, node_id: str, key: str, start: float, end: float, points: int, resolution: str = "auto"
) -> dict[str, Any]:
    """min/avg/max/count of ``key`` per bucket over [start, end), at most ``points`` buckets, oldest first."""
    width = (end - start) / points
    used = pick_resolution(engine.dialect.name, resolution, width)
    params: dict[str, Any] = {"node_id": node_id, "start": start, "end": end, "width": width, "last": points - 1}
    if engine.dialect.name == "sqlite":
        params["path"] = f'$."{key}"'
        sql = _HISTORY_SQL["sqlite"]
    else:
        params["key"] = key
        if used == "raw":
            sql = _HISTORY_SQL["postgresql"]
        else:
            sql = _ROLLUP_SQL.format(table=f"rollup_{used}")
            params["low"] = math.floor(start / ROLLUP_WIDTHS[used]) * ROLLUP_WIDTHS[used]
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(sql), params)).all()
    return {
        "node_id": node_id,
        "key": key,
        "start": start,
        "end": end,
        "resolution": used,
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
