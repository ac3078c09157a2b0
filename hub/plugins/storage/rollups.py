"""PostgreSQL rollups: per node and key, min/max/sum/count of each minute and hour, folded in off the hot path.

The batch writer never touches the rollups (an earlier attempt upserted them
in the writer's transaction and ingest fell to 0.55-0.95 of its rate).
Instead :func:`fold` runs every few seconds (``storage: rollup_interval``) and
aggregates the telemetry rows written since the previous fold into
``rollup_1m`` and ``rollup_1h`` with ``INSERT … ON CONFLICT DO UPDATE``
merging min, max, sum and count, so a late reading for an old minute is
merged into it like any other.

Which rows are new.  Each row carries ``txid``, the id of the transaction that
wrote it (``pg_current_xact_id()``, 64 bits: no wraparound).  Commits become
visible out of order (transaction 101 may commit before 100), so "the highest
id seen so far" would skip 100's rows; a time lag would only make that
unlikely.  The fold instead uses the snapshot's ``xmin``: every transaction
whose id is below it has finished, committed or aborted, and nothing can
ever add rows under such an id again.  So one statement, with one snapshot,
takes exactly the rows with ``watermark <= txid < xmin``: all of those that
will ever exist are already visible.  It folds them and stores ``xmin`` as the
new watermark in the same transaction, so a crash folds nothing twice and
skips nothing.  A transaction still open (a writer mid-batch, or any
long-running writing transaction on the server) holds ``xmin`` back: its rows,
and later ones, wait for the next fold, which only delays the rollups.

Rows are found through ``ix_telemetry_txid`` on each partition.  A batch
shares one transaction id, and B-tree deduplication stores a run of equal keys
as one entry with a list of row pointers, so the index costs little to keep.

Only one process folds at a time (a transaction-level advisory lock; the others
skip that round).  What the fold does not know: a row deleted later (retention,
a removed node) stays counted in the rollups; they have their own retention.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_LOGGER = logging.getLogger(__name__)

RESOLUTIONS = {"1m": 60.0, "1h": 3600.0}
"""Seconds each rollup's buckets span."""
_LOCK_KEY = 0x6875625F666F6C64  # "hub_fold"

_MERGE = """
ON CONFLICT (node_ref, key, bucket) DO UPDATE SET
    min_v = LEAST(r.min_v, EXCLUDED.min_v), max_v = GREATEST(r.max_v, EXCLUDED.max_v),
    sum_v = r.sum_v + EXCLUDED.sum_v, n = r.n + EXCLUDED.n
RETURNING 1
"""
# One statement, one snapshot: horizon, the new rows, both upserts and the new watermark agree.  Readings
# count like the raw history does: JSON numbers, and booleans as 0/1.  The hour rollup is aggregated from
# the minute deltas (min of mins, sums of sums), not from the rows again.
_FOLD = f"""
WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x),
minutes AS MATERIALIZED (
    SELECT node_ref, key, floor(ts / 60) * 60 AS bucket, min(v) AS min_v, max(v) AS max_v, sum(v) AS sum_v,
           count(v) AS n
    FROM (
        SELECT t.node_ref, e.key, t.ts,
               CASE jsonb_typeof(e.value) WHEN 'number' THEN e.value::float8
                                          WHEN 'boolean' THEN e.value::boolean::int::float8 END AS v
        FROM telemetry AS t CROSS JOIN LATERAL jsonb_each(t.states) AS e
        WHERE t.txid >= CAST(CAST(:watermark AS text) AS xid8) AND t.txid < (SELECT x FROM horizon)
    ) AS readings
    WHERE v IS NOT NULL
    GROUP BY 1, 2, 3
),
minute_rows AS (
    INSERT INTO rollup_1m AS r (node_ref, key, bucket, min_v, max_v, sum_v, n)
    SELECT node_ref, key, bucket, min_v, max_v, sum_v, n FROM minutes
    {_MERGE}
),
hour_rows AS (
    INSERT INTO rollup_1h AS r (node_ref, key, bucket, min_v, max_v, sum_v, n)
    SELECT node_ref, key, floor(bucket / 3600) * 3600, min(min_v), max(max_v), sum(sum_v), sum(n)
    FROM minutes GROUP BY 1, 2, 3
    {_MERGE}
),
state AS (
    UPDATE rollup_state SET watermark = GREATEST(watermark, (SELECT x FROM horizon)), folded_at = :now
    WHERE name = 'telemetry'
    RETURNING watermark
)
SELECT (SELECT watermark::text FROM state), (SELECT count(*) FROM minute_rows), (SELECT count(*) FROM hour_rows)
"""


@dataclass(frozen=True)
class FoldResult:
    """What one fold did: the new watermark (None: another process was folding) and the buckets written."""

    watermark: str | None
    minutes: int = 0
    hours: int = 0


async def fold(engine: AsyncEngine, now: float) -> FoldResult:
    """Fold every telemetry row committed since the last fold into the rollups (see the module docstring)."""
    async with engine.begin() as conn:
        if not (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})).scalar():
            return FoldResult(None)
        watermark = (
            await conn.execute(text("SELECT watermark::text FROM rollup_state WHERE name = 'telemetry'"))
        ).scalar()
        if watermark is None:  # the migration writes this row; a database someone emptied gets it back
            await conn.execute(text("INSERT INTO rollup_state (name, watermark) VALUES ('telemetry', '3')"))
            watermark = "3"
        row = (await conn.execute(text(_FOLD), {"watermark": watermark, "now": now})).one()
    return FoldResult(row[0], row[1], row[2])


async def wait_folded(engine: AsyncEngine, now: float, timeout: float = 30.0) -> FoldResult:
    """Fold until every row committed before this call is in the rollups (tests and benchmarks).

    One fold suffices unless another process holds the lock or an open transaction holds the horizon
    back; TimeoutError after ``timeout`` seconds.
    """
    async with engine.connect() as conn:
        target = (await conn.execute(text("SELECT pg_current_snapshot()::text"))).scalar()
    assert target is not None
    needed = int(target.split(":")[1])  # xmax: every transaction that had committed is below it
    async with asyncio.timeout(timeout):
        while True:
            result = await fold(engine, now)
            if result.watermark is not None and int(result.watermark) >= needed:
                return result
            await asyncio.sleep(0.05)
