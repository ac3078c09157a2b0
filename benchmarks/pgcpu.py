"""CPU time of the PostgreSQL server processes serving one database, for benchmarks on the server's machine.

On two cores the whole machine's CPU decides the ingest rate, and PostgreSQL's share of it moves with
the fleet as much as the hub's.  Counting it per process name from outside also counts every other
client of a shared server; this counts only the backends connected to the benchmark's own database
(``pg_stat_activity``), read from ``/proc``.  Background processes (WAL writer, checkpointer) serve every
database and are left out.  None when the server is not on this machine or the database is not PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

_PIDS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
_TICKS = os.sysconf("SC_CLK_TCK")


async def backend_cpu(db_url: str) -> dict[int, float] | None:
    """CPU seconds each backend of the database has used so far, by pid; None where that cannot be read."""
    if not db_url.startswith("postgresql"):
        return None
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            pids = (await conn.execute(text(_PIDS))).scalars().all()
    finally:
        await engine.dispose()
    used: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None  # not this machine's process table (or it just ended): no figure rather than a wrong one
        used[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return used


def cpu_between(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """CPU seconds the backends used between the two readings (a backend that connected meanwhile counts whole)."""
    if before is None or after is None:
        return None
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
