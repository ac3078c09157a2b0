"""A task cancelled in the middle of a SQLite transaction lets go of the database at once.

Found as a CI failure: an OTA test's hub logged "database is locked" for 40 s and more, until its stop gave up
with 502 readings unstored.  A cancelled statement's cursor kept the invalidated connection alive inside SQLite,
its write lock included, until the garbage collector freed the cursor.  The garbage collector is switched off
here, so that only the fix can release the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from hub.plugins.storage.database import SharedDatabase
from hub.plugins.storage.engine import create_engine

SLOW_QUERY = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT max(i) FROM n"
"""A statement that keeps SQLite busy for a good while, so that the cancellation lands while it runs."""


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_transaction_cancelled_mid_statement_releases_the_write_lock(tmp_path: Path, no_gc: None) -> None:
    engine = create_engine(make_url(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"))
    database = SharedDatabase(engine)
    try:
        async with database.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)"))
            await conn.execute(sa.text("INSERT INTO counter VALUES (1, 0)"))
        written = asyncio.Event()

        async def write_then_read_slowly() -> None:
            async with database.begin() as conn:
                await conn.execute(sa.text("UPDATE counter SET value = value + 1"))  # the transaction holds the lock
                written.set()
                await conn.execute(sa.text(SLOW_QUERY))

        task = asyncio.create_task(write_then_read_slowly())
        await written.wait()
        await asyncio.sleep(0.05)
        assert not task.done(), "the slow query ended before the cancellation: make it slower"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        with contextlib.closing(sqlite3.connect(tmp_path / "hub.db", timeout=1)) as other, other:
            other.execute("UPDATE counter SET value = value + 10")  # "database is locked" without the fix
            (value,) = other.execute("SELECT value FROM counter").fetchone()
        assert value == 10, "the cancelled transaction's update must have been rolled back"
    finally:
        await engine.dispose()
