"""One process at a time among those sharing a database: a PostgreSQL session advisory lock with failover.

With several hub processes on one PostgreSQL database (workers and API
instances on RabbitMQ), some jobs must run in exactly one of them: judging
silence (presence), driving OTA rollouts.  Each such job has a lock key; every
process that may run it keeps a connection of its own and tries
``pg_try_advisory_lock(key)`` on it every ``retry`` seconds.  The holder is the
*leader*; :attr:`Leadership.leader` says so and ``on_change`` callbacks hear
every change.

Failover: a leader that stops releases the lock; one that dies or loses its
database connection loses it with the session (PostgreSQL ends the session, the
lock goes with it).  Followers try again every ``retry`` seconds, so a new
leader takes over within about that, plus the time PostgreSQL needs to notice a
dead client.  A leader whose connection fails stops leading at once: two
leaders never act together.  On SQLite (one process by construction) the
process is always the leader.

The core holds no SQL engine: the two statements run on the connections the
:class:`~hub.core.database.Database` protocol hands out (storage provides it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .database import Database
from .metrics import Metrics
from .ratelimit import RateLimitedLogger

_LOGGER = logging.getLogger(__name__)

RETRY = 1.0
"""Seconds between a follower's attempts, and between a leader's checks that its session is alive."""


class Leadership:
    """Holds (or tries to take) one advisory lock in a background task; :attr:`leader` says whether it holds it."""

    def __init__(
        self,
        database: Database | None,
        metrics: Metrics,
        *,
        key: int,
        job: str,
        gauge: str,
        retry: float = RETRY,
    ) -> None:
        """``key``: the lock all processes of this job compete for; ``job``: what the leader does (for logs and the
        gauge's help); ``gauge``: the metric that is 1 while this process leads."""
        self._database = database
        self._key = int(key)
        self._job = job
        self._retry = retry
        self.leader = database is None or database.dialect != "postgresql"
        self._task: asyncio.Task[None] | None = None
        self._changed: list[Callable[[bool], None]] = []
        self._decided = asyncio.Event()
        if not self.elected:
            self._decided.set()
        self._log = RateLimitedLogger(_LOGGER, interval=60.0)
        self._gauge = metrics.gauge(gauge, f"1 while this process is the one that {job}")
        self._gauge.set(1 if self.leader else 0)

    @property
    def elected(self) -> bool:
        """True when an election is needed at all (PostgreSQL: several processes may share the database)."""
        return self._database is not None and self._database.dialect == "postgresql"

    def on_change(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(leader)`` whenever this process becomes the leader or stops being it."""
        self._changed.append(callback)

    def start(self, create_task: Callable[..., asyncio.Task[Any]]) -> None:
        if self.elected:
            self._task = create_task(self._run(), name=f"leader-{self._key:x}")

    async def decided(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) for the first attempt's outcome; True when it was decided in time.

        For a job that should start with the process when nobody else runs it (an operator's request right
        after the start should not find it still undecided)."""
        try:
            async with asyncio.timeout(timeout):
                await self._decided.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop competing; a held lock is released (the next process takes over within ``retry``)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _set(self, leader: bool) -> None:
        if leader != self.leader:
            self.leader = leader
            self._gauge.set(1 if leader else 0)
            _LOGGER.info("Leader election: this process %s %s", "now" if leader else "no longer", self._job)
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
                                await asyncio.shield(conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self._key})"))
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - the database is away: not the leader until it is back
                self._set(False)
                self._log.warning("db", "Leader election (%s): database unavailable (%s); retrying", self._job, err)
                self._decided.set()  # decided for now: not the leader
            await asyncio.sleep(self._retry)

    async def _hold(self, conn: Any) -> None:
        while True:
            if self.leader:
                await conn.exec_driver_sql("SELECT 1")  # the session (and so the lock) is still there
            else:
                result = await conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self._key})")
                self._set(bool(result.scalar()))
            await conn.commit()  # no transaction left open between rounds
            self._decided.set()
            await asyncio.sleep(self._retry)
