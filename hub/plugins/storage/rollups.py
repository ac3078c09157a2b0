"""PostgreSQL rollups: per node and key, min/max/sum/count of each minute and hour, from deltas the writer appends.

Two halves.  The batch writer aggregates the rows it inserts, per node, key
and minute, and appends those partial aggregates to ``rollup_pending`` with a
binary ``COPY`` once an epoch (:mod:`.rollup_deltas`, :mod:`.rollup_epochs`):
no upsert, no index, nothing another transaction waits for.  (An earlier
attempt upserted the rollups in the writer's transaction and ingest fell to
0.55-0.95 of its rate: every batch updated the same hot rows.)  Then
:func:`fold`, every few seconds (``storage: rollup_interval``), moves the
pending deltas into ``rollup_1m`` and ``rollup_1h`` with ``INSERT … ON
CONFLICT DO UPDATE`` merging min, max, sum and count, so a late reading for an
old minute is merged into it like any other.

Exactly once.  A delta reaches ``rollup_pending`` exactly once for the rows
it describes: in its epoch's seal, or, when the writer abandoned the epoch,
in the recovery that aggregates those rows from the table (:mod:`.rollup_epochs`).
A redelivered message already stored adds no delta: the writer computes the
deltas from only the rows that came back new from the dedupe keys, and two
writers storing the same message meet on that key (the second waits, then
skips it).  The fold is one statement: ``DELETE FROM rollup_pending
RETURNING`` feeds the merges, so the deltas it removes are exactly the ones it
folds, in one transaction: a crash folds nothing and loses nothing.  A delta a
writer commits while the fold runs is not in the fold's snapshot, so it is
neither deleted nor folded, and waits for the next fold.

The previous design had the fold find new telemetry rows itself (a ``txid``
column and index, a watermark) and aggregate their JSON in SQL: ``jsonb_each``
and a numeric-to-text-to-float cast per reading, about half of PostgreSQL's
CPU during ingest.  Measured against it (README, "PostgreSQL's share of
ingest"): the hub pays 4-6 µs a message for the deltas, PostgreSQL saves about 10
(folding included), at 1,000 and at 10,000 nodes.  Migration 0005 folds what
that design left unfolded and drops the column.

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
# One statement, one snapshot: the deltas deleted are the deltas merged.  Several batches may hold deltas
# of one minute, so they are summed first (ON CONFLICT may not meet the same key twice in one statement).
# The hour rollup is aggregated from the minutes (min of mins, sums of sums).
_FOLD = f"""
WITH moved AS (
    DELETE FROM rollup_pending RETURNING node_ref, key, bucket, min_v, max_v, sum_v, n
),
minutes AS MATERIALIZED (
    SELECT node_ref, key, bucket, min(min_v) AS min_v, max(max_v) AS max_v, sum(sum_v) AS sum_v,
           sum(n)::bigint AS n, count(*) AS deltas
    FROM moved
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
)
SELECT (SELECT coalesce(sum(deltas), 0) FROM minutes), (SELECT count(*) FROM minute_rows),
       (SELECT count(*) FROM hour_rows)
"""


@dataclass(frozen=True)
class FoldResult:
    """What one fold did: the deltas it merged (None: another process was folding) and the buckets written."""

    deltas: int | None
    minutes: int = 0
    hours: int = 0


async def fold(engine: AsyncEngine) -> FoldResult:
    """Merge every committed pending delta into the rollups (see the module docstring)."""
    async with engine.begin() as conn:
        if not (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})).scalar():
            return FoldResult(None)
        row = (await conn.execute(text(_FOLD))).one()
    return FoldResult(int(row[0]), row[1], row[2])


async def wait_folded(engine: AsyncEngine, timeout: float = 30.0) -> FoldResult:
    """Fold until every delta committed before this call is in the rollups (tests and benchmarks).

    One fold that gets the lock suffices (its snapshot is taken after this call); while another process
    holds the lock, it retries.  TimeoutError after ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        while True:
            result = await fold(engine)
            if result.deltas is not None:
                return result
            await asyncio.sleep(0.05)
