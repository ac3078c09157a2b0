"""Retention: deleting telemetry and status history older than ``keep_days`` without stalling ingest.

Rows go in small chunks (``purge_chunk`` rows, one short transaction each,
pausing after every ``purge_chunk`` rows), so the batch writer never waits behind a long
delete: on SQLite it waits at most one chunk for the write lock, on
PostgreSQL it does not wait at all.  Chunks are taken per node through the
(node, ts) index the tables already have, so retention needs no extra index
on ``ts`` that every insert would pay for.  Only nodes whose oldest row is
past the cutoff are visited (one index lookup per node to find them).

PostgreSQL first drops whole partitions (:mod:`.partitions`): the telemetry
and 1-minute rollup days older than ``keep_days``, the 1-hour rollup ranges
older than ``rollup_keep_days``.  Row by row there is then only what a dropped
partition could not take: the day the cutoff falls in, rows in the default
partitions, and the dedupe keys of deleted rows (through a BRIN index on
their ``ts``).  The counts returned are those rows; the dropped partitions are
counted apart (``partitions_dropped``): counting their rows would mean reading them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import RateLimitedLogger

from .partitions import drop_partitions_before

_LOGGER = logging.getLogger(__name__)

TABLES = ("telemetry", "status_history")
CHUNK_PAUSE = 0.05
"""Seconds between two chunk deletes, leaving the database to the writer."""
FIRST_RUN_DELAY = 60.0
"""Seconds after start before the first background purge (startup is busy enough)."""

_DELETE_KEYS = (
    "DELETE FROM telemetry_dedupe WHERE ctid = ANY(ARRAY(SELECT ctid FROM telemetry_dedupe WHERE ts < :cutoff "
    "LIMIT :limit))"
)
_DELETE_OLD_ROLLUPS = "DELETE FROM {table}_default WHERE bucket < :cutoff"
_NODES_WITH_OLD_ROWS = "SELECT id FROM nodes WHERE (SELECT min(ts) FROM {table} WHERE node_ref = nodes.id) < :cutoff"
_DELETE_CHUNK = {
    # ctid = ANY(ARRAY(...)) plans as a TID scan; ctid IN (subquery) would scan the whole table.  A ctid is
    # only unique within one partition, so the row's own conditions are repeated: whatever else in another
    # partition shares a ctid is deleted only when it is just as old (the chunk may then be a little larger).
    "postgresql": "DELETE FROM {table} WHERE node_ref = :node_ref AND ts < :cutoff AND ctid = ANY(ARRAY("
    "SELECT ctid FROM {table} WHERE node_ref = :node_ref AND ts < :cutoff LIMIT :limit))",
    "sqlite": "DELETE FROM {table} WHERE rowid IN ("
    "SELECT rowid FROM {table} WHERE node_ref = :node_ref AND ts < :cutoff LIMIT :limit)",
}


class Retention:
    """Purges old rows on demand (:meth:`purge`) and in the background (:meth:`run`)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        keep_days: float,
        rollup_keep_days: float = 0,
        chunk: int,
        interval: float,
        clock: Callable[[], float],
        on_deleted: Callable[[int], None],
    ) -> None:
        self._engine = engine
        self._keep_days = keep_days
        self._rollup_keep_days = rollup_keep_days
        self._chunk = chunk
        self._interval = interval
        self._clock = clock
        self._on_deleted = on_deleted
        self._lock = asyncio.Lock()
        self._log = RateLimitedLogger(_LOGGER, interval=300)

    async def purge(self, keep_days: float | None = None) -> dict[str, int]:
        """Delete rows older than ``keep_days`` (default: the configured value; 0 keeps everything).

        Returns how many rows were deleted, in total and per table (and on
        PostgreSQL how many partitions were dropped).  Runs one at a time: a
        call while another purge runs waits for it, then runs.
        """
        days = self._keep_days if keep_days is None else keep_days
        result = {"deleted": 0, **{table: 0 for table in TABLES}}
        if days <= 0:
            return result
        postgres = self._engine.dialect.name == "postgresql"
        async with self._lock:
            now = self._clock()
            cutoff = now - days * 86400
            if postgres:
                result["partitions_dropped"] = await self._drop_partitions(now, cutoff)
            for table in TABLES:
                result[table] = await self._purge_table(table, cutoff)
            if postgres:
                await self._purge_keys(cutoff)
        result["deleted"] = sum(result[table] for table in TABLES)
        return result

    async def _drop_partitions(self, now: float, cutoff: float) -> int:
        """Drop whole partitions past their table's cutoff, and old rows of the rollups' default partitions."""
        cutoffs = {"telemetry": cutoff, "rollup_1m": cutoff}
        if self._rollup_keep_days > 0:
            cutoffs["rollup_1h"] = now - self._rollup_keep_days * 86400
        dropped = 0
        for table, table_cutoff in cutoffs.items():
            dropped += len(await drop_partitions_before(self._engine, table, table_cutoff))
            if table != "telemetry":
                async with self._engine.begin() as conn:
                    await conn.execute(sa.text(_DELETE_OLD_ROLLUPS.format(table=table)), {"cutoff": table_cutoff})
        return dropped

    async def _purge_keys(self, cutoff: float) -> None:
        """Delete the dedupe keys of messages older than the cutoff, in chunks."""
        count = self._chunk
        while count >= self._chunk:
            async with self._engine.begin() as conn:
                result = await conn.execute(sa.text(_DELETE_KEYS), {"cutoff": cutoff, "limit": self._chunk})
            count = max(result.rowcount, 0)
            await asyncio.sleep(CHUNK_PAUSE)

    async def _purge_table(self, table: str, cutoff: float) -> int:
        delete = sa.text(_DELETE_CHUNK[self._engine.dialect.name].format(table=table))
        async with self._engine.connect() as conn:
            refs = (await conn.execute(sa.text(_NODES_WITH_OLD_ROWS.format(table=table)), {"cutoff": cutoff})).scalars()
            node_refs = list(refs)
        deleted = since_pause = 0
        for node_ref in node_refs:
            count = self._chunk
            while count >= self._chunk:
                async with self._engine.begin() as conn:
                    result = await conn.execute(delete, {"node_ref": node_ref, "cutoff": cutoff, "limit": self._chunk})
                count = max(result.rowcount, 0)
                deleted += count
                since_pause += count
                self._on_deleted(count)
                if since_pause >= self._chunk:
                    since_pause = 0
                    await asyncio.sleep(CHUNK_PAUSE)
        return deleted

    async def run(self) -> None:
        """Purge every ``interval`` seconds, forever (the plugin cancels this at shutdown)."""
        delay = min(FIRST_RUN_DELAY, self._interval)
        while True:
            await asyncio.sleep(delay)
            delay = self._interval
            try:
                result = await self.purge()
            except Exception as err:  # noqa: BLE001 - a database hiccup: retry next interval, ingest is unaffected
                self._log.error("purge", "Retention purge failed, retrying in %.0f s: %s", self._interval, err)
                continue
            if result["deleted"]:
                _LOGGER.info(
                    "Retention deleted %d telemetry and %d status rows older than %g days",
                    result["telemetry"],
                    result["status_history"],
                    self._keep_days,
                )
