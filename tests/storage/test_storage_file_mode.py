"""The SQLite database holds every reading: it is created readable by its owner only, like auth.json."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from storage_helpers import STORAGE


async def test_a_new_sqlite_database_is_private(hub_factory) -> None:
    old_umask = os.umask(0o022)  # the usual umask, which would make it 0644
    try:
        hub = await hub_factory({}, builtins=STORAGE)  # the default database: <data_dir>/hub.db
    finally:
        os.umask(old_umask)
    database = Path(hub.data_dir) / "hub.db"
    files = [database, *(Path(f"{database}{suffix}") for suffix in ("-wal", "-shm"))]
    existing = [path for path in files if path.exists()]
    assert database in existing and len(existing) == 3  # WAL mode: the migrations made all three
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in existing} == {
        path.name: 0o600 for path in existing
    }
