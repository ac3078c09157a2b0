"""Bringing a database's schema up to date with alembic, from the async engine, without an alembic.ini.

The database holds the core schema and the tables of plugins that declare their
own (the ``hub_db_migrations`` hook, see :mod:`.owners`).  Each owner is a
:class:`Migrations`: a folder of alembic revision files and a version table of
its own (``alembic_version`` for the core, ``alembic_version_<name>`` for a
plugin), so no owner's revisions depend on another's, and an owner that is no
longer installed is simply not looked at: its tables and version table stay.
All owners share one ``env.py`` (in ``migrations/``).

Runs on every ``hub_setup`` (a fresh database just works) and from ``hub db
upgrade``.  An owner already at its newest revision costs one ``SELECT`` on its
version table.  Each owner migrates in its own transaction; on PostgreSQL an
advisory lock makes two processes starting at once (``hub run`` and ``hub
nodes``) take turns instead of racing to create the same tables.

A revision may define ``prepare_online(connection)``: on PostgreSQL it runs
for each pending revision before the migration's transaction opens, on an
autocommit connection under a session advisory lock, for work that must not
sit inside one long transaction (``CREATE INDEX CONCURRENTLY``, a ``VALIDATE
CONSTRAINT`` that scans while writers go on).  It must be idempotent, and the
revision's ``upgrade`` must still work when it did not run (``hub db`` by hand,
SQLite).  Revision 0004 uses it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import MigrationError

from .schema import metadata as core_metadata

_LOGGER = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
"""The shared ``env.py`` and revision template; the core's revisions are in its ``versions/``."""
_PG_LOCK_KEY = 0x6875625F6462  # "hub_db": serialises migrations across processes


@dataclass(frozen=True)
class Migrations:
    """One owner's revisions (a folder of alembic revision files) and the table recording how far they ran."""

    name: str
    versions: Path
    version_table: str
    metadata: MetaData | None = None
    """The tables the revisions should build, for autogenerate; None when the owner does not say."""


CORE = Migrations("storage", MIGRATIONS_DIR / "versions", "alembic_version", core_metadata)
"""The core schema (nodes, entities, telemetry, status history); its version table predates plugin migrations."""


def alembic_config(migrations: Migrations = CORE, connection: Connection | None = None) -> Config:
    """An alembic Config for one owner's revisions (and ``connection``, which env.py migrates)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(migrations.versions).replace("%", "%%"))
    config.attributes["version_table"] = migrations.version_table
    config.attributes["metadata"] = migrations.metadata
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision(migrations: Migrations = CORE) -> str | None:
    """The newest revision an owner defines (None while its folder holds none); MigrationError if ambiguous."""
    try:
        return ScriptDirectory.from_config(alembic_config(migrations)).get_current_head()
    except CommandError as err:  # e.g. two heads: the owner's revisions branch
        raise MigrationError(f"migrations of {migrations.name}: {err}") from err


async def upgrade(engine: AsyncEngine, migrations: Migrations = CORE) -> tuple[str | None, str | None]:
    """Upgrade one owner's tables to its newest revision; returns (revision before, revision now)."""
    head = head_revision(migrations)
    if engine.dialect.name == "postgresql":
        await _prepare_online(engine, migrations, head)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = await conn.run_sync(current_revision, migrations.version_table)
        if before != head:
            await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(migrations, sync_conn), "head"))
            _LOGGER.info("Database schema of %s upgraded from %s to %s", migrations.name, before or "empty", head)
        return before, head


async def _prepare_online(engine: AsyncEngine, migrations: Migrations, head: str | None) -> None:
    """Run the ``prepare_online`` steps of the revisions still to apply, oldest first (see the module docstring)."""
    async with engine.connect() as conn:
        before = await conn.run_sync(current_revision, migrations.version_table)
        await conn.rollback()
        if before == head or head is None:
            return
        scripts = ScriptDirectory.from_config(alembic_config(migrations))
        pending = list(scripts.iterate_revisions(head, before))
        steps = [
            script.module.prepare_online for script in reversed(pending) if hasattr(script.module, "prepare_online")
        ]
        if not steps:
            return
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
        try:
            for step in steps:
                await conn.run_sync(step)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})


async def upgrade_plugins(engine: AsyncEngine, owners: list[Migrations]) -> list[tuple[str, str | None, str | None]]:
    """Upgrade each plugin's tables in turn; returns (name, before, now) each, MigrationError naming a failing one.

    Each runs in its own transaction, so the owners migrated before a failure stay migrated.
    """
    results = []
    for migrations in owners:
        try:
            before, head = await upgrade(engine, migrations)
        except MigrationError:
            raise
        except Exception as err:  # a broken revision file, SQL the database refuses, a lost connection
            raise MigrationError(f"migrations of {migrations.name} failed: {err}") from err
        results.append((migrations.name, before, head))
    return results


def current_revision(connection: Connection, version_table: str = CORE.version_table) -> str | None:
    """The revision an owner's tables are at (None before its first migration).

    Alembic logs two INFO lines whenever it opens a migration context; for this
    check, done at every start, they would only be noise, so they are held back.
    """
    logger = logging.getLogger("alembic.runtime.migration")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        return MigrationContext.configure(connection, opts={"version_table": version_table}).get_current_revision()
    finally:
        logger.setLevel(level)
