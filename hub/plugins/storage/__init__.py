"""Built-in storage: nodes, entities, telemetry and status history in SQLite or PostgreSQL.

What it does for the hub (details in each module):

* ``storage:`` config section (:mod:`.config`); SQLite at ``<hub.data_dir>/hub.db`` by default.
* Schema (:mod:`.schema`) kept current by alembic migrations on every start and by ``hub db upgrade``,
  and so are the tables of plugins that declare migrations (``hub_db_migrations``, :mod:`.owners`);
  ``hub db revision`` writes a new revision file.
* Shares the database with those plugins as ``hub.data[DATA_DATABASE]`` (:mod:`.database`).
* Restores the registry at setup (:mod:`.restore`), also for one-off CLI commands such as
  ``hub nodes``.  Plugins that need the restored fleet or their own tables declare
  ``after=("storage",)`` (or ``requires``): they set up after this, and stop before its final flush.
* Writes every registry event in batches, one transaction each, and provides the durability
  barrier so transports acknowledge a message only after its batch committed (:mod:`.writer`).
* Retention (:mod:`.retention`) and the ``storage.history``, ``storage.status_history``,
  ``storage.purge`` and ``storage.fold`` services (:mod:`.services`).
* On PostgreSQL: daily time partitions made ahead (:mod:`.partitions`) and 1-minute/1-hour rollups, whose
  deltas the writer accumulates (:mod:`.rollup_deltas`) and appends once an epoch (:mod:`.rollup_epochs`)
  and a background fold merges (:mod:`.rollups`, :mod:`.maintenance`), which long history windows read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub import HubKey, Manifest, hookimpl

from .cli import add_revision_arguments, db_revision, db_upgrade
from .config import CONFIG_SCHEMA
from .runtime import Storage

if TYPE_CHECKING:
    from hub import Hub

MANIFEST = Manifest(name="storage", sections=("storage",))

DATA_STORAGE: HubKey[Storage] = HubKey("storage.runtime")
"""Key of this hub's :class:`~.runtime.Storage` in ``hub.data`` (private to the plugin)."""


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``storage:`` section."""
    return {"storage": CONFIG_SCHEMA}


@hookimpl
def hub_cli_commands(register: Callable[..., None]) -> None:
    """``hub db upgrade``, ``hub db revision``."""
    register("db upgrade", db_upgrade, help="create or upgrade the database schema (and plugins' tables)")
    register(
        "db revision",
        db_revision,
        help="write a new migration revision for a plugin's tables",
        arguments=add_revision_arguments,
    )


@hookimpl
async def hub_setup(hub: Hub) -> None:
    """Connect, migrate (the core's and the plugins' tables) and restore the registry, before the plugins
    that set up after storage."""
    storage = Storage(hub)
    await storage.setup()
    hub.data[DATA_STORAGE] = storage


@hookimpl
def hub_start(hub: Hub) -> None:
    """Start background retention."""
    storage = hub.data.get(DATA_STORAGE)
    if storage is not None:
        storage.start()


@hookimpl
async def hub_shutdown(hub: Hub) -> None:
    """After the plugins that come after storage: commit everything accepted before the stop, then close."""
    storage = hub.data.pop(DATA_STORAGE, None)
    if storage is not None:
        await storage.shutdown()
