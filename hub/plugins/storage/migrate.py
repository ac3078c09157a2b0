"""Bringing a database's schema up to date with alembic, from the async engine, without an alembic.ini.

Runs on every ``hub_setup`` (a fresh database just works) and from ``hub db
upgrade``.  When the database is already at the newest revision nothing but
one ``SELECT`` on ``alembic_version`` happens.  On PostgreSQL an advisory
lock makes two processes starting at once (``hub run`` and ``hub nodes``)
take turns instead of racing to create the same tables.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

_LOGGER = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x6875625F6462  # "hub_db": serialises migrations across processes


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config pointing at the shipped migrations (and at ``connection``, which env.py uses)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the shipped migrations define."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine) -> tuple[str | None, str]:
    """Upgrade the schema to the newest revision; returns (revision before, revision now)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = await conn.run_sync(current_revision)
        head = head_revision()
        if before != head:
            await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), "head"))
            _LOGGER.info("Database schema upgraded from %s to %s", before or "empty", head)
        return before, head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None for an empty database).

    Alembic logs two INFO lines whenever it opens a migration context; for this
    check, done at every start, they would only be noise, so they are held back.
    """
    logger = logging.getLogger("alembic.runtime.migration")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        return MigrationContext.configure(connection).get_current_revision()
    finally:
        logger.setLevel(level)
