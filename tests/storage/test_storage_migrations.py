"""Schema migrations, ``hub db upgrade`` and the ``storage:`` config section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from storage_helpers import STORAGE, Store

from hub.core.cli import main
from hub.core.errors import ConfigError, StartupError
from hub.plugins.storage.migrate import alembic_config, head_revision, upgrade
from hub.plugins.storage.schema import dialect_filter, metadata


async def _diff(store: Store) -> list:
    """What differs between the database and schema.py (this dialect's objects; no run-time partitions)."""
    opts = {"include_object": dialect_filter(store.dialect)}
    async with store.engine.connect() as conn:
        return await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync, opts=opts), metadata))


async def test_migrations_build_the_schema_from_empty_and_are_idempotent(store: Store):
    assert await upgrade(store.engine) == (None, head_revision())
    assert await _diff(store) == []  # the migrations build exactly schema.py
    assert await upgrade(store.engine) == (head_revision(), head_revision())
    tables = {"nodes", "entities", "telemetry", "status_history"}
    if store.dialect == "postgresql":
        found = await store.all("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        states_type = await store.scalar(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'telemetry' AND column_name = 'states'"
        )
        assert states_type == "jsonb"
    else:
        found = await store.all("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert tables <= {row[0] for row in found}


async def test_downgrade_to_empty_and_back(store: Store):
    await upgrade(store.engine)
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(connection=sync), "base"))
    assert await upgrade(store.engine) == (None, head_revision())
    assert await _diff(store) == []


async def test_hub_setup_migrates_a_fresh_database(storage_hub, store: Store):
    await storage_hub()
    assert await store.scalar("SELECT version_num FROM alembic_version") == head_revision()


def test_db_upgrade_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "config.yaml"
    config.write_text("hub:\n  data_dir: data\n")
    assert main(["db", "upgrade", "-c", str(config)]) == 0
    assert "upgraded schema from empty" in capsys.readouterr().out
    assert (tmp_path / "data" / "hub.db").exists()
    assert main(["db", "upgrade", "-c", str(config)]) == 0
    assert f"already at schema revision {head_revision()}" in capsys.readouterr().out


def test_db_upgrade_command_reports_an_unreachable_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "config.yaml"
    config.write_text("storage:\n  db_url: postgresql://nobody:secret@127.0.0.1:1/hub\n")
    assert main(["db", "upgrade", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "Cannot upgrade postgresql+asyncpg://nobody:***@127.0.0.1:1/hub" in err
    assert "secret" not in err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/hub", "unsupported database 'mysql'"),
        ("sqlite://", "in-memory SQLite is not supported"),
        ("postgresql://user@host", "needs a database name"),
        ("not a url", "not a database URL"),
        (42, "expected a database URL"),
    ],
)
async def test_bad_db_url_is_a_config_error(hub_factory, url, message):
    with pytest.raises(ConfigError) as info:
        await hub_factory({"storage": {"db_url": url}}, builtins=STORAGE)
    assert any("storage -> db_url" in line and message in line for line in info.value.messages), info.value.messages


async def test_urls_are_rewritten_to_the_async_drivers(hub_factory, tmp_path: Path):
    hub = await hub_factory({"storage": {"db_url": "sqlite:///rel.db"}}, builtins=STORAGE, start=False)
    assert hub.config["storage"]["db_url"] == "sqlite+aiosqlite:///rel.db"
    hub = await hub_factory({"storage": {"db_url": "postgresql://u@h/db"}}, builtins=STORAGE, start=False)
    assert hub.config["storage"]["db_url"] == "postgresql+asyncpg://u@h/db"
    hub = await hub_factory({}, builtins=STORAGE, start=False)
    assert hub.config["storage"]["max_pending"] == 100_000
    hub = await hub_factory({"storage": {"batch_size": 50_000}}, builtins=STORAGE, start=False)
    assert hub.config["storage"]["max_pending"] == 200_000


async def test_relative_sqlite_path_lives_in_the_data_dir(hub_factory):
    hub = await hub_factory({"storage": {"db_url": "sqlite:///rel.db"}}, builtins=STORAGE)
    assert (hub.data_dir / "rel.db").exists()


async def test_unreachable_database_stops_the_hub_from_starting(hub_factory):
    with pytest.raises(StartupError, match="cannot open the database"):
        await hub_factory({"storage": {"db_url": "postgresql://nobody@127.0.0.1:1/hub"}}, builtins=STORAGE)


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path):
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        assert await store.scalar("PRAGMA journal_mode") == "wal"
        assert await store.scalar("PRAGMA synchronous") == 1  # NORMAL
        assert await store.scalar("PRAGMA foreign_keys") == 1
    finally:
        await store.engine.dispose()


async def test_unusable_sqlite_path_stops_the_hub_from_starting(hub_factory, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StartupError, match="cannot open"):
        await hub_factory({"storage": {"db_url": f"sqlite:///{blocker}/sub/hub.db"}}, builtins=STORAGE)


async def test_0003_adds_area_and_tags_to_existing_nodes(store: Store):
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(connection=sync), "0002"))
    await store.execute(
        "INSERT INTO nodes (node_id, name, description, status, attributes) VALUES ('n1', 'old', '', 'unknown', '{}')"
    )
    assert await upgrade(store.engine) == ("0002", head_revision())
    rows = await store.all("SELECT node_id, area, tags FROM nodes")
    tags = rows[0][2] if store.dialect == "postgresql" else json.loads(rows[0][2])  # JSONB comes back decoded
    assert (rows[0][0], rows[0][1], tags) == ("n1", None, [])
    assert await _diff(store) == []
