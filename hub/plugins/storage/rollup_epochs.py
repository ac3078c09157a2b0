"""PostgreSQL: the writer's rollup deltas held in memory across batches, written once an epoch, and never lost.

Written with every batch (the previous design), a fleet whose nodes each have
one message in a batch appended five or six delta rows a message; writing and
folding them was two thirds of PostgreSQL's CPU during ingest at 10,000 nodes.
So the writer accumulates its batches' deltas (:class:`.RollupAccumulator`) for
``rollup_interval`` seconds, an *epoch*, and then writes one row per node, key
and minute.  The deltas live in memory meanwhile; epochs make that safe:

* An epoch is a row of ``rollup_epochs``.  The writer opens one in a batch's
  transaction, and every row the batch stores carries its id
  (``telemetry.epoch``, BRIN-indexed).  Each batch also locks the epoch's row
  (``FOR KEY SHARE``) in its own transaction.
* Sealing, in one transaction: ``DELETE`` the row, ``COPY`` the accumulated
  rows into ``rollup_pending``.  So for every epoch, either its row exists and
  none of its readings' deltas are in the database (they are in a writer's
  memory, or were lost with it), or its row is gone and all of them are.
* The writer seals in the first batch after ``rollup_interval`` or once the
  accumulator holds :data:`MAX_GROUPS` (node, minute) groups (opening the
  next epoch in the same transaction), when idle, and when it stops.
* Any failed write or seal *abandons* the epoch: the writer drops its
  accumulator and opens a new epoch.  (Whether a commit that failed half-way
  happened is unknowable here; the table knows.)
* :func:`recover_abandoned` (run by the fold) takes every epoch whose row is
  older than :func:`abandoned_after`: it deletes the row, then, in a second
  statement (a fresh snapshot, which sees a batch that was committing while
  the ``DELETE`` waited for its lock), aggregates the stored rows that carry
  its id into ``rollup_pending``, in one transaction.  A writer that is
  merely slow and still holds such an epoch finds the row gone at its next
  batch or seal and drops its accumulator: the table's rows were counted by
  recovery instead.  Nothing is counted twice or lost, whoever gets there
  first.

Before migration 0008 the epoch was carried by the rows' dedupe keys
(``telemetry_dedupe.epoch``), and readings without a key (the ESPHome
plugin's) had their deltas written with their batch; recovery still reads the
keys' epochs, for epochs a writer of that version left open.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .rollup_deltas import RollupAccumulator, copy_deltas

_LOGGER = logging.getLogger(__name__)

ABANDONED_WINDOWS = 3
"""An epoch open this many ``rollup_interval`` windows (plus :data:`ABANDONED_SLACK`) is taken as abandoned."""
ABANDONED_SLACK = 10.0
MAX_GROUPS = 50_000
"""(node, minute) groups an epoch may hold before it is sealed early: about 10 MB at five keys a group (40 bytes
a key: the slot and its four aggregates), twice that while a batch's new slots are merged in.  A fleet of 10,000
nodes spans 10,000-20,000 in a 60 s epoch; a flood of readings with scattered timestamps (a backfill, a node with a
broken clock) would otherwise grow it with every message."""

_OPEN = "INSERT INTO rollup_epochs (owner) VALUES ($1) RETURNING id"
_HOLD = "SELECT id FROM rollup_epochs WHERE id = $1 FOR KEY SHARE"
_SEAL = "DELETE FROM rollup_epochs WHERE id = $1"
_ABANDONED = "SELECT id FROM rollup_epochs WHERE opened < now() - make_interval(secs => :age) ORDER BY id"
_TAKE = "DELETE FROM rollup_epochs WHERE id = :epoch RETURNING id"
# The readings of one epoch's stored rows, as the rollups count them (numbers; booleans as 0/1).  Rows carry
# their epoch since migration 0008; a writer of the version before marked only its keys (telemetry_dedupe.epoch).
_RECOVER = """
INSERT INTO rollup_pending (node_ref, key, bucket, min_v, max_v, sum_v, n)
SELECT node_ref, key, floor(ts / 60) * 60, min(v), max(v), sum(v), count(v)
FROM (
    SELECT t.node_ref, e.key, t.ts,
           CASE jsonb_typeof(e.value) WHEN 'number' THEN e.value::float8
                                      WHEN 'boolean' THEN e.value::boolean::int::float8 END AS v
    FROM (
        SELECT node_ref, ts, states FROM telemetry WHERE epoch = :epoch
        UNION ALL
        SELECT t.node_ref, t.ts, t.states
        FROM telemetry_dedupe AS d
        JOIN telemetry AS t ON t.node_ref = d.node_ref AND t.ts = d.ts AND t.dedupe = d.dedupe
        WHERE d.epoch = :epoch
    ) AS t
    CROSS JOIN LATERAL jsonb_each(t.states) AS e
) AS readings
WHERE v IS NOT NULL
GROUP BY 1, 2, 3
"""


def abandoned_after(window: float) -> float:
    """Seconds after which an open epoch is recovered from the table (a live writer seals within ``window``)."""
    return ABANDONED_WINDOWS * window + ABANDONED_SLACK


@dataclass(slots=True)
class Turn:
    """What a batch's transaction did to the epochs, applied once it has committed."""

    epoch: int
    """The epoch the batch's rows carry."""
    fresh: bool
    """The batch opened that epoch: the accumulator was written (sealed) or is void (taken by recovery)."""


class RollupEpochs:
    """The writer's side (see the module docstring); used by the PostgreSQL sink, one batch at a time."""

    def __init__(self, window: float, max_groups: int = MAX_GROUPS) -> None:
        self._window = window
        self._max_groups = max_groups
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._accumulator = RollupAccumulator()
        self._epoch: int | None = None
        self._opened = 0.0

    @property
    def accumulator(self) -> RollupAccumulator:
        """The deltas of the open epoch's committed readings."""
        return self._accumulator

    def seal_after(self) -> float | None:
        """Seconds until the open epoch is due to be sealed (0 or less: now); None when none is open."""
        if self._epoch is None:
            return None
        return 0.0 if self._due() else self._opened + self._window - time.monotonic()

    def _due(self) -> bool:
        return len(self._accumulator) >= self._max_groups or time.monotonic() - self._opened >= self._window

    async def enter(self, db: asyncpg.Connection) -> Turn:
        """In a batch's transaction, before its rows are written: the epoch they carry.

        Seals the open epoch first if it is due, and opens a new one if it was sealed or taken.
        """
        epoch = self._epoch
        if epoch is not None:
            if self._due():
                await self._seal(db, epoch)
            elif await db.fetchval(_HOLD, epoch) is not None:
                return Turn(epoch, fresh=False)
            else:
                _LOGGER.warning("Rollup epoch %d was recovered from the table while open; starting a new one", epoch)
        return Turn(await db.fetchval(_OPEN, self._owner), fresh=True)

    def committed(self, turn: Turn) -> None:
        """The batch's transaction committed: the epoch it used is the open one."""
        if turn.fresh:
            self._accumulator = RollupAccumulator()
            self._epoch = turn.epoch
            self._opened = time.monotonic()

    async def seal(self, db: asyncpg.Connection) -> None:
        """Seal the open epoch in a transaction of its own (idle, stopping, or asked to); none open, nothing."""
        epoch = self._epoch
        if epoch is None:
            return
        try:
            async with db.transaction():
                await self._seal(db, epoch)
        except BaseException:
            self.abandon()
            raise
        self._accumulator = RollupAccumulator()
        self._epoch = None

    def abandon(self) -> None:
        """A write or seal failed: the open epoch is left to recovery, which counts the rows the table holds."""
        if self._epoch is not None:
            _LOGGER.info("Rollup epoch %d abandoned after a failed write; recovery will count its rows", self._epoch)
        self._accumulator = RollupAccumulator()
        self._epoch = None

    async def _seal(self, db: asyncpg.Connection, epoch: int) -> None:
        if await db.execute(_SEAL, epoch) == "DELETE 1":
            await copy_deltas(db, self._accumulator.rows())
        else:  # recovery took it (this writer looked gone): the table's rows were counted from the table
            _LOGGER.warning("Rollup epoch %d was recovered from the table before it was sealed", epoch)


async def recover_abandoned(engine: AsyncEngine, age: float) -> int:
    """Count the stored rows of epochs open longer than ``age`` seconds into ``rollup_pending``; returns how
    many epochs were recovered (see the module docstring)."""
    async with engine.connect() as conn:
        epochs = list((await conn.execute(text(_ABANDONED), {"age": age})).scalars())
    recovered = 0
    for epoch in epochs:
        async with engine.begin() as conn:
            # Two statements: the DELETE waits for a batch still writing this epoch, and only a snapshot
            # taken after it (the INSERT's) sees that batch's rows.
            if (await conn.execute(text(_TAKE), {"epoch": epoch})).first() is None:
                continue  # sealed, or recovered by another process, meanwhile
            await conn.execute(text(_RECOVER), {"epoch": epoch})
            recovered += 1
    if recovered:
        _LOGGER.warning("Recovered the rollups of %d abandoned epoch(s) from the stored rows", recovered)
    return recovered
