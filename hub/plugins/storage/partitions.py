"""PostgreSQL time partitions: made ahead of the data, dropped whole by retention.

``telemetry`` (by ``ts``) and the rollup tables (by ``bucket``) are partitioned
by RANGE of epoch seconds: ``telemetry`` and ``rollup_1m`` one partition a UTC
day, ``rollup_1h`` one per 30 days (:data:`SPANS`), named after the UTC date
their range starts (``telemetry_p20261130``).  Each table also has a DEFAULT
partition, so a row whose time has no partition (a node with a wrong clock,
data older than the oldest partition) is stored all the same; retention
deletes such rows row by row when they are old enough.

:func:`ensure_partitions` runs at every start and then hourly: it makes the
partitions from today to ``days_ahead`` days on, skipping ranges any existing
partition covers (the pre-partitioning table, attached by migration 0004 as
``telemetry_legacy`` for everything before its cut, among them).  It is
idempotent, and safe with several hubs doing it at once (an advisory lock, and
``IF NOT EXISTS`` checks under it).  Making a partition while the default one
holds rows of its range would fail, so those rows are moved in the same
transaction (normally there are none: partitions are made days ahead).

:func:`drop_partitions_before` drops partitions wholly older than the cutoff.
``DETACH PARTITION … CONCURRENTLY`` is not allowed on a table with a default
partition, so the partition is dropped directly: that takes an ACCESS EXCLUSIVE
lock on the parent for a moment, and ``lock_timeout`` bounds how long it may
wait for (and so hold up) the writer; a drop that times out is retried at the
next run.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_LOGGER = logging.getLogger(__name__)

DAY = 86400
SPANS = {"telemetry": DAY, "rollup_1m": DAY, "rollup_1h": 30 * DAY}
"""Seconds each partition of a table covers (aligned on multiples of it since the epoch)."""
TIME_COLUMNS = {"telemetry": "ts", "rollup_1m": "bucket", "rollup_1h": "bucket"}
LOCK_TIMEOUT = "2s"
"""Longest wait for a lock when making or dropping a partition (the writer waits behind a waiting DDL)."""
_LOCK_KEY = 0x6875625F70617274  # "hub_part": one maintainer at a time
_LOCK_NOT_AVAILABLE = "55P03"

_LIST = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = CAST(:parent AS regclass)
"""
_BOUND = re.compile(r"FOR VALUES FROM \((?P<low>[^)]*)\) TO \((?P<high>[^)]*)\)")


@dataclass(frozen=True)
class Partition:
    """One partition: its range [low, high) in epoch seconds (None: MINVALUE / MAXVALUE), or the default one."""

    name: str
    low: float | None
    high: float | None
    default: bool = False

    def overlaps(self, low: float, high: float) -> bool:
        """True if this partition takes any time in [low, high)."""
        if self.default:
            return False
        return (self.low is None or self.low < high) and (self.high is None or low < self.high)


def partition_name(table: str, start: float) -> str:
    """``telemetry`` + a range starting 2026-11-30 00:00 UTC → ``telemetry_p20261130``."""
    return f"{table}_p{datetime.fromtimestamp(start, UTC):%Y%m%d}"


def default_partition(table: str) -> str:
    return f"{table}_default"


def span_start(table: str, ts: float) -> int:
    """Start of the partition range of ``table`` that holds time ``ts``."""
    span = SPANS[table]
    return math.floor(ts / span) * span


def parse_bound(name: str, expression: str) -> Partition:
    """A partition from ``pg_get_expr(relpartbound)``: ``FOR VALUES FROM ('1764460800') TO ('1764547200')``."""
    if expression.strip().upper() == "DEFAULT":
        return Partition(name, None, None, default=True)
    match = _BOUND.search(expression)
    if match is None:
        raise ValueError(f"partition {name}: unexpected bound {expression!r}")

    def value(raw: str) -> float | None:
        raw = raw.strip().strip("'")
        return None if raw.upper() in ("MINVALUE", "MAXVALUE") else float(raw)

    return Partition(name, value(match["low"]), value(match["high"]))


async def list_partitions(conn: AsyncConnection, table: str) -> list[Partition]:
    """The partitions of ``table``, oldest range first (the default one last)."""
    rows = (await conn.execute(text(_LIST), {"parent": table})).all()
    found = [parse_bound(name, bound) for name, bound in rows]
    return sorted(found, key=lambda p: (p.default, -math.inf if p.low is None else p.low))


def create_default_sql(table: str) -> str:
    return f"CREATE TABLE IF NOT EXISTS {default_partition(table)} PARTITION OF {table} DEFAULT"


async def ensure_partitions(engine: AsyncEngine, now: float, days_ahead: int) -> list[str]:
    """Make every partitioned table's partitions from ``now``'s to ``days_ahead`` days later; returns those made."""
    made: list[str] = []
    for table in SPANS:
        span = SPANS[table]
        first = span_start(table, now)
        last = span_start(table, now + days_ahead * DAY)
        for low in range(first, last + 1, span):
            name = await _create(engine, table, low, low + span)
            if name is not None:
                made.append(name)
    if made:
        _LOGGER.info("Storage: made partitions %s", ", ".join(made))
    return made


async def _create(engine: AsyncEngine, table: str, low: int, high: int) -> str | None:
    """Make the partition [low, high) of ``table`` unless an existing one covers any of it; returns its name."""
    name = partition_name(table, low)
    column = TIME_COLUMNS[table]
    async with engine.begin() as conn:
        await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        if any(p.overlaps(low, high) for p in await list_partitions(conn, table)):
            return None
        default = default_partition(table)
        await conn.execute(
            text(
                f"CREATE TEMPORARY TABLE hub_moved ON COMMIT DROP AS WITH moved AS ("
                f"DELETE FROM {default} WHERE {column} >= {low} AND {column} < {high} RETURNING *) "
                "SELECT * FROM moved"
            )
        )
        await conn.execute(text(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({low}) TO ({high})"))
        await conn.execute(text(f"INSERT INTO {table} SELECT * FROM hub_moved"))
    return name


async def drop_partitions_before(engine: AsyncEngine, table: str, cutoff: float) -> list[str]:
    """Drop the partitions of ``table`` whose whole range is older than ``cutoff``; returns those dropped.

    A partition whose drop cannot get its lock within :data:`LOCK_TIMEOUT` is left for the next run.
    """
    async with engine.connect() as conn:
        partitions = await list_partitions(conn, table)
    dropped = []
    for partition in partitions:
        if partition.default or partition.high is None or partition.high > cutoff:
            continue
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                await conn.execute(text(f"DROP TABLE IF EXISTS {partition.name}"))
        except DBAPIError as err:
            if getattr(err.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE and "lock timeout" not in str(err):
                raise
            _LOGGER.warning("Storage: partition %s is busy, dropping it at the next retention run", partition.name)
            continue
        dropped.append(partition.name)
    if dropped:
        _LOGGER.info("Retention dropped partitions %s", ", ".join(dropped))
    return dropped
