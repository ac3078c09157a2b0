"""Creating the async engine for either dialect, set up the way the writer and readers need it."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .jsoncodec import dumps

_LOGGER = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT = 10.0
"""Seconds a SQLite writer waits for another (retention, the batch writer) to commit before failing."""


def create_engine(url: URL) -> AsyncEngine:
    """An engine for ``url`` (already resolved, see :func:`.config.resolve_db_url`).

    SQLite runs in WAL mode with ``synchronous=NORMAL``: readers never block the
    writer, and a commit survives a killed process (not a power cut, which is
    the trade-off SQLite's docs recommend for WAL).  PostgreSQL connections are
    pinged on checkout so a restarted server costs one failed flush, not a
    stuck pool, and run with ``jit = off``.  SQLite gets a 64 MB page cache (default 2 MB): the telemetry
    indexes outgrow the default quickly, and measured here that alone took a
    million-row ingest from 40k to 50k rows/s.
    """
    options: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": orjson.loads}
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        _create_private(url.database)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT}, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "invalidate", _sqlite_rollback_before_close)
        return engine
    # JIT off: the hub's queries are short, and compiling them cost more than it saved (measured: JIT was a
    # large part of the 140 ms the raw 30-day history query took).
    connect_args = {"server_settings": {"jit": "off"}}
    return create_async_engine(
        url, pool_size=5, max_overflow=5, pool_pre_ping=True, connect_args=connect_args, **options
    )


def _create_private(database: str) -> None:
    """Create a new SQLite file readable by its owner only (0600, like auth.json): it holds every reading.

    SQLite gives the -wal and -shm files it makes beside it the database file's permissions, so they are
    private too.  An existing file keeps the mode its owner gave it.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


MIN_SQLITE_VERSION = (3, 24, 0)
"""Upserts (``ON CONFLICT … DO UPDATE``) need 3.24; the writer and history also need the JSON functions."""


async def sqlite_problem(engine: AsyncEngine) -> str | None:
    """Why this SQLite library cannot run the hub's storage, or None when it can."""
    async with engine.connect() as conn:
        version = str((await conn.exec_driver_sql("SELECT sqlite_version()")).scalar_one())
        if tuple(int(part) for part in version.split(".")[:3]) < MIN_SQLITE_VERSION:
            return f"SQLite {version} is too old (needs {'.'.join(map(str, MIN_SQLITE_VERSION))} or newer)"
        try:
            await conn.exec_driver_sql("SELECT json_extract('[1]', '$[0]')")
        except DBAPIError:
            return f"SQLite {version} was built without the JSON functions the hub needs"
    return None


_SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "foreign_keys=ON",
    "cache_size=-65536",  # 64 MB
    "wal_autocheckpoint=10000",  # pages: index pages dirtied by several batches are checkpointed once
)


def _sqlite_rollback_before_close(dbapi_connection: Any, _record: Any, _error: BaseException | None) -> None:
    """Roll back a SQLite connection SQLAlchemy is about to throw away, so that it lets go of its write lock now.

    A task cancelled inside a transaction (at a hub stop, a request timeout) gets its connection invalidated,
    which closes it.  But a cursor the cancellation left unfinished keeps the closed connection alive inside
    SQLite (``sqlite3_close_v2`` waits for every statement to be finalized), transaction and write lock
    included, until the garbage collector finds that cursor: every other writer got "database is locked" for
    as long, which was 40 s and more once at a hub stop.  Rolling back first ends the transaction whatever is
    left unfinished.
    """
    try:
        dbapi_connection.rollback()
    except Exception:  # noqa: BLE001 - already broken, or closed outside the event loop: nothing to release
        _LOGGER.debug("Rollback of an invalidated SQLite connection failed", exc_info=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
