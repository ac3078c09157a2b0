"""Plugins that own tables: what they register through the ``hub_db_migrations`` hook.

A plugin calls ``register(name, directory, metadata=None)``; the name becomes
its version table (``alembic_version_<name>``), so it is checked here, where a
mistake can still be reported to the plugin that made it: a bad registration
raises inside that plugin's hook, which disables that plugin and no other.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData

from hub import MigrationError

from .migrate import CORE, Migrations

if TYPE_CHECKING:
    from hub import PluginManager

_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
"""Short enough for ``alembic_version_<name>`` to fit PostgreSQL's 63-character identifiers, and never quoted."""


def collect(plugins: PluginManager) -> list[Migrations]:
    """Every plugin's migrations, sorted by name (the order they run in)."""
    found: dict[str, Migrations] = {}

    def register(name: str, directory: str | os.PathLike[str], metadata: MetaData | None = None) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise MigrationError(f"migrations name {name!r}: expected 1-40 of a-z, 0-9, _ starting with a letter")
        if name == CORE.name or name in found:
            raise MigrationError(f"migrations name {name!r} is already taken")
        versions = Path(directory)
        if not versions.is_dir():
            raise MigrationError(f"migrations {name!r}: {versions} is not a directory")
        if metadata is not None and not isinstance(metadata, MetaData):
            raise MigrationError(f"migrations {name!r}: metadata must be a sqlalchemy.MetaData")
        found[name] = Migrations(name, versions.resolve(), f"alembic_version_{name}", metadata)

    plugins.call_sync("hub_db_migrations", register=register)
    return [found[name] for name in sorted(found)]
