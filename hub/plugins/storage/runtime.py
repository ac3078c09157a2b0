"""One hub's storage: the engine, the batch writer, retention and services, set up and torn down together.

A database that cannot be opened at setup is a :class:`~hub.StartupError`:
the hub must not run (and acknowledge messages) without the store it promised.  So
is a plugin's migration that fails: that plugin would run against tables that are
not there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from hub import DATA_DATABASE, MigrationError, StartupError

from . import restore, services
from .commands import CommandStore
from .config import resolve_db_url
from .database import SharedDatabase
from .engine import create_engine, sqlite_problem
from .maintenance import Maintenance
from .migrate import upgrade, upgrade_plugins
from .owners import collect
from .retention import Retention
from .sink_postgres import PostgresSink
from .sink_sqlite import SqliteSink
from .writer import BatchWriter

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)


class Storage:
    """See the module docstring; the plugin keeps one per hub."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._config = hub.config["storage"]
        self.url = resolve_db_url(self._config["db_url"], hub.data_dir)
        try:
            self.engine = create_engine(self.url)
        except OSError as err:  # e.g. the SQLite file's folder cannot be created
            raise StartupError(f"storage: cannot open {self.url.render_as_string(hide_password=True)}: {err}") from err
        self._writer: BatchWriter | None = None
        self._retention: Retention | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._maintenance: Maintenance | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._unregister: list[Callable[[], None]] = []
        self._database: SharedDatabase | None = None
        self._commands: CommandStore | None = None

    async def setup(self) -> None:
        """Migrate the core's and the plugins' tables, restore the registry, start the writer, share the database."""
        hub, config = self._hub, self._config
        owners = collect(hub.plugins)
        try:
            if self.engine.dialect.name == "sqlite" and (problem := await sqlite_problem(self.engine)):
                raise StartupError(f"storage: {problem}")
            await upgrade(self.engine)
            await upgrade_plugins(self.engine, owners)
            if self.engine.dialect.name == "postgresql" and hub.role.runs_maintenance:
                self._maintenance = Maintenance(
                    self.engine,
                    days_ahead=config["partition_days_ahead"],
                    fold_interval=config["rollup_interval"],
                    clock=hub.clock,
                    metrics=hub.metrics,
                )
                try:
                    await self._maintenance.prepare_partitions()
                except SQLAlchemyError as err:  # e.g. a lock timeout: rows go to the default partition meanwhile
                    _LOGGER.warning("Storage: making partitions ahead failed, retrying within the hour: %s", err)
            restored = await restore.load(self.engine)
            self._commands = CommandStore(self.engine, hub.bus)
            pending_commands = await self._commands.load_pending()
        except MigrationError as err:
            await self.engine.dispose()
            raise StartupError(f"storage: {err}") from err
        except (SQLAlchemyError, OSError) as err:
            await self.engine.dispose()
            raise StartupError(
                f"storage: cannot open the database {self.url.render_as_string(hide_password=True)}: {err}"
            ) from err
        except BaseException:
            await self.engine.dispose()
            raise
        hub.registry.restore(restored.nodes)
        hub.commands.restore(pending_commands)
        self._commands.start()
        sink = (
            PostgresSink(self.engine, rollup_window=config["rollup_interval"])
            if self.engine.dialect.name == "postgresql"
            else SqliteSink(self.engine)
        )
        self._writer = BatchWriter(
            hub,
            sink,
            ids=restored.ids,
            persisted_seen=restored.last_seen,
            batch_size=config["batch_size"],
            flush_interval=config["flush_interval"],
            max_pending=config["max_pending"],
        )
        self._writer.start()
        purged = hub.metrics.counter("purged_rows", "Rows deleted by retention")
        self._retention = Retention(
            self.engine,
            keep_days=config["keep_days"],
            rollup_keep_days=config["rollup_keep_days"],
            chunk=config["purge_chunk"],
            interval=config["purge_interval"],
            clock=hub.clock,
            on_deleted=purged.inc,
        )
        self._unregister = services.register(
            hub.services, self.engine, self._retention, self._commands, self._writer.seal_rollups
        )
        self._database = hub.data[DATA_DATABASE] = SharedDatabase(self.engine)
        _LOGGER.info(
            "Storage: %s, %d node(s) restored", self.url.render_as_string(hide_password=True), len(restored.nodes)
        )

    def start(self) -> None:
        """Start background retention (not for one-off CLI commands, and not when keep_days is 0) and, on
        PostgreSQL, the partition and rollup upkeep."""
        loop = asyncio.get_running_loop()
        if self._hub.role.runs_maintenance and self._retention is not None and self._config["keep_days"] > 0:
            self._retention_task = loop.create_task(self._retention.run(), name="storage-retention")
        if self._maintenance is not None:
            self._maintenance_task = loop.create_task(self._maintenance.run(), name="storage-maintenance")

    async def shutdown(self) -> None:
        """Stop retention and upkeep, commit everything accepted, close the database."""
        for task in (self._retention_task, self._maintenance_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for unregister in self._unregister:
            unregister()
        if self._database is not None:
            self._database.close()
            if self._hub.data.get(DATA_DATABASE) is self._database:
                del self._hub.data[DATA_DATABASE]
        if self._writer is not None:
            await self._writer.close(self._config["shutdown_timeout"])
        if self._commands is not None:
            await self._commands.close()
        await self.engine.dispose()
