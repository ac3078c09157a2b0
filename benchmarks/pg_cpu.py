"""CPU time of the PostgreSQL backends serving one database, when the server runs on this machine.

The hub's share of a machine includes the server's work for it: COPY, index
inserts, the rollup fold, autovacuum of its tables.  This reads the backends of
the database from ``pg_stat_activity`` (client backends, autovacuum and
parallel workers alike) and their user+system CPU from ``/proc/PID/stat``,
sampling while the measured phase runs: a backend seen at the start counts from
its CPU then, one that appears later from zero, one that exits with its last
sample.  Whatever samples missed (a backend born and gone between two samples)
is not counted, so the figure errs low.

A server elsewhere (or one whose processes this user cannot read) gives None:
its pids mean nothing here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg
from proc_cpu import cpu_seconds

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
_BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


class PgCpuMeter:
    """Sum of the database's backends' CPU between :meth:`start` and :meth:`stop` (see the module docstring)."""

    def __init__(self, db_url: str) -> None:
        parts = urlsplit(db_url)
        self._local = parts.scheme.startswith("postgresql") and (parts.hostname or "") in _LOCAL_HOSTS
        self._dsn = parts._replace(scheme="postgresql").geturl()
        self._conn: asyncpg.Connection | None = None
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}

    @property
    def active(self) -> bool:
        """Whether it is measuring (started, and the server is on this machine)."""
        return self._conn is not None

    async def start(self) -> None:
        """Open the sampling connection and take the starting CPU of every backend (nothing if not local)."""
        if not self._local:
            return
        self._conn = await asyncpg.connect(self._dsn)
        await self.sample()
        self._first = dict(self._last)
        if not self._first:  # not even the hub's own connections are readable here: not this machine's server
            await self._conn.close()
            self._conn = None

    async def sample(self) -> None:
        """Record the CPU of the backends now (cheap: one query, one /proc read each)."""
        if self._conn is None:
            return
        for record in await self._conn.fetch(_BACKENDS):
            seconds = cpu_seconds(record["pid"], "postgres")
            if seconds is not None:
                self._last[record["pid"]] = seconds

    async def spent(self) -> float | None:
        """The CPU seconds used since :meth:`start` so far, or None when the server is not on this machine."""
        if self._conn is None:
            return None
        await self.sample()
        return sum(seconds - self._first.get(pid, 0.0) for pid, seconds in self._last.items())

    async def stop(self) -> float | None:
        """The CPU seconds used since :meth:`start`, or None when the server is not on this machine."""
        seconds = await self.spent()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        return seconds
