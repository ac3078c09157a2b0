"""Who judges silence: exactly one process at a time, elected by a PostgreSQL advisory lock.

With several hub processes on one database (workers on RabbitMQ), every worker
hears only its share of the fleet, so no worker's memory may decide that a node
went silent.  The processes that take input compete for one session-level
advisory lock (``pg_try_advisory_lock``) on a connection each keeps open; the
holder is the *leader*, and only the leader runs the silence check.  Before each
check the leader reads every node's ``last_seen`` from the database (the source
of truth, written by whichever worker heard the node, at most
``LAST_SEEN_RESOLUTION`` s stale) into its registry, so it judges the whole
fleet, not its own share.

Failover: a leader that stops releases the lock; one that dies or loses its
database connection loses it with the session (PostgreSQL ends the session, the
lock goes with it).  Followers try again every ``retry`` seconds, so a new
leader takes over within about that, plus the time PostgreSQL needs to notice a
dead client.  A leader whose connection fails stops checking at once: two
leaders are never both checking.  On SQLite (one process by construction) the
process is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from hub import Database, Metrics, RateLimitedLogger

_LOGGER = logging.getLogger(__name__)

LOCK_KEY = 0x6875622D70726573  # "hub-pres": the advisory lock all hub processes on one database compete for
RETRY = 1.0
"""Seconds between a follower's attempts, and between a leader's checks that its session is alive."""


class Leadership:
    """Holds (or tries to take) the presence lock in a background task; :attr:`leader` says whether it holds it."""

    def __init__(self, database: Database | None, metrics: Metrics, *, retry: float = RETRY) -> None:
        self._database = database
        self._retry = retry
        self.leader = database is None or database.dialect != "postgresql"
        self._task: asyncio.Task[None] | None = None
        self._changed: list[Callable[[bool], None]] = []
        self._log = RateLimitedLogger(_LOGGER, interval=60.0)
        self._gauge = metrics.gauge("presence_leader", "1 while this process is the one that marks nodes offline")
        self._gauge.set(1 if self.leader else 0)

    @property
    def elected(self) -> bool:
        """True when an election is needed at all (PostgreSQL: several processes may share the database)."""
        return self._database is not None and self._database.dialect == "postgresql"

    def on_change(self, callback: Callable[[bool], None]) -> None:
        self._changed.append(callback)

    def start(self, create_task: Callable[..., asyncio.Task[Any]]) -> None:
        if self.elected:
            self._task = create_task(self._run(), name="presence-leader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _set(self, leader: bool) -> None:
        if leader != self.leader:
            self.leader = leader
            self._gauge.set(1 if leader else 0)
            _LOGGER.info("Presence: %s", "this process now marks nodes offline (leader)" if leader else "follower")
            for callback in self._changed:
                callback(leader)

    async def _run(self) -> None:
        assert self._database is not None
        while True:
            try:
                async with self._database.connect() as conn:
                    try:
                        await self._hold(conn)
                    finally:
                        held = self.leader
                        self._set(False)
                        if held:
                            with contextlib.suppress(Exception):  # a dead session released it already
                                await asyncio.shield(conn.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_KEY})"))
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - the database is away: not the leader until it is back
                self._set(False)
                self._log.warning("db", "Presence leader election: database unavailable (%s); retrying", err)
            await asyncio.sleep(self._retry)

    async def _hold(self, conn: Any) -> None:
        while True:
            if self.leader:
                await conn.exec_driver_sql("SELECT 1")  # the session (and so the lock) is still there
            else:
                result = await conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({LOCK_KEY})")
                self._set(bool(result.scalar()))
            await conn.commit()  # no transaction left open between rounds
            await asyncio.sleep(self._retry)


async def read_fleet(database: Database) -> list[tuple[str, str, str, str | None, float | None, float | None]]:
    """Every node as the database holds it: node_id, name, status, status_reason, status_since, last_seen."""
    async with database.connect() as conn:
        result = await conn.exec_driver_sql(
            "SELECT node_id, name, status, status_reason, status_since, last_seen FROM nodes"
        )
        return [tuple(row) for row in result]  # type: ignore[misc]
