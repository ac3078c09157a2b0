"""Plugin-owned tables: a plugin's own alembic revisions, run at start and by ``hub db upgrade`` beside the core's,
on SQLite and PostgreSQL; the database shared through ``hub.data[DATA_DATABASE]``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from storage_helpers import STORAGE, Store, TcpProxy

from hub import Manifest
from hub.core import cli
from hub.core.bootstrap import load_plugins
from hub.core.const import DATA_DATABASE
from hub.core.errors import HubError, StartupError, StorageUnavailable
from hub.core.plugins.hookspecs import hookimpl
from hub.plugins.storage.migrate import head_revision

REVISION_1 = """
import sqlalchemy as sa
from alembic import op

revision = "g1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("gadget_items", sa.Column("id", sa.Integer, primary_key=True), sa.Column("label", sa.Text))


def downgrade() -> None:
    op.drop_table("gadget_items")
"""

REVISION_2 = """
import sqlalchemy as sa
from alembic import op

revision = "g2"
down_revision = "g1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("gadget_items", sa.Column("colour", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gadget_items") as batch:
        batch.drop_column("colour")
"""

BROKEN = """
from alembic import op

revision = "g2"
down_revision = "g1"


def upgrade() -> None:
    op.execute("ALTER TABLE no_such_table ADD COLUMN x INTEGER")
"""


def gadget_metadata(*, colour: bool) -> sa.MetaData:
    """The tables the gadget plugin's revisions build (with revision 2's column, or without)."""
    metadata = sa.MetaData()
    columns = [sa.Column("id", sa.Integer, primary_key=True), sa.Column("label", sa.Text)]
    sa.Table("gadget_items", metadata, *columns, *([sa.Column("colour", sa.Text)] if colour else []))
    return metadata


class Gadget:
    """A plugin that owns a table: registers its revisions, writes a row at setup through the shared database."""

    MANIFEST = Manifest(name="gadget", requires=("storage",))

    def __init__(self, versions: Path, name: str = "gadget", metadata: sa.MetaData | None = None) -> None:
        self.versions = versions
        self.name = name
        self.metadata = metadata
        self.database: Any = None

    @hookimpl
    def hub_db_migrations(self, register) -> None:
        register(self.name, self.versions, self.metadata)

    @hookimpl
    async def hub_setup(self, hub) -> None:
        self.database = hub.data[DATA_DATABASE]
        async with self.database.begin() as conn:
            await conn.execute(sa.text("INSERT INTO gadget_items (label) VALUES ('set up')"))


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    """The gadget plugin's migrations folder, holding revision 1."""
    folder = tmp_path / "gadget_migrations"
    folder.mkdir()
    (folder / "g1_items.py").write_text(REVISION_1)
    return folder


async def hub_cli(*argv: str) -> int:
    """Run the ``hub`` command line as a shell would (it runs its own event loop, so in a thread)."""
    return await asyncio.to_thread(cli.main, list(argv))


async def tables(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


async def test_plugin_tables_are_migrated_at_start_beside_the_core_and_idempotently(
    hub_factory, db_url: str, store: Store, versions: Path
):
    config = {"storage": {"db_url": db_url}}
    gadget = Gadget(versions)
    hub = await hub_factory(config, builtins=STORAGE, plugins=[(gadget, "gadget")])
    assert hub.plugins.failed == {}
    assert gadget.database.dialect == store.dialect
    assert {"nodes", "telemetry", "gadget_items", "alembic_version", "alembic_version_gadget"} <= await tables(store)
    assert await store.scalar("SELECT version_num FROM alembic_version") == head_revision()
    assert await store.scalar("SELECT version_num FROM alembic_version_gadget") == "g1"
    await hub.async_stop()
    assert DATA_DATABASE not in hub.data

    await hub_factory(config, builtins=STORAGE, plugins=[(Gadget(versions), "gadget")])  # nothing left to migrate
    assert await store.all("SELECT label FROM gadget_items") == [("set up",), ("set up",)]
    assert await store.all("SELECT version_num FROM alembic_version_gadget") == [("g1",)]


async def test_a_hub_without_the_plugin_starts_and_leaves_its_tables_alone(
    hub_factory, db_url: str, store: Store, versions: Path
):
    config = {"storage": {"db_url": db_url}}
    hub = await hub_factory(config, builtins=STORAGE, plugins=[(Gadget(versions), "gadget")])
    await hub.async_stop()

    hub = await hub_factory(config, builtins=STORAGE)  # the plugin was uninstalled
    assert hub.plugins.failed == {} and hub.services.has("storage", "history")
    await hub.async_stop()
    assert await store.all("SELECT label FROM gadget_items") == [("set up",)]
    assert await store.scalar("SELECT version_num FROM alembic_version_gadget") == "g1"


async def test_a_later_revision_of_the_plugin_upgrades_its_tables(
    hub_factory, db_url: str, store: Store, versions: Path
):
    config = {"storage": {"db_url": db_url}}
    hub = await hub_factory(config, builtins=STORAGE, plugins=[(Gadget(versions), "gadget")])
    await hub.async_stop()

    (versions / "g2_colour.py").write_text(REVISION_2)  # the plugin's next release
    gadget = Gadget(versions)
    await hub_factory(config, builtins=STORAGE, plugins=[(gadget, "gadget")])
    assert await store.scalar("SELECT version_num FROM alembic_version_gadget") == "g2"
    async with gadget.database.begin() as conn:
        await conn.execute(sa.text("UPDATE gadget_items SET colour = 'red'"))
    assert await store.all("SELECT label, colour FROM gadget_items ORDER BY id") == [("set up", "red")] * 2


async def test_db_upgrade_command_runs_plugin_migrations(
    db_url: str, store: Store, versions: Path, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
):
    def plugins_with_gadget(*args: Any, **kwargs: Any):
        manager = load_plugins(*args, **kwargs)
        manager.register(Gadget(versions), "gadget")
        return manager

    monkeypatch.setattr(cli, "load_plugins", plugins_with_gadget)
    config = tmp_path / "config.yaml"
    config.write_text(f"storage:\n  db_url: {db_url}\n")
    shown = sa.make_url(db_url).render_as_string(hide_password=True)  # as `hub db upgrade` resolves it

    assert await hub_cli("db", "upgrade", "-c", str(config)) == 0
    out = capsys.readouterr().out
    assert f"upgraded schema from empty to revision {head_revision()}" in out
    assert f"{shown}: gadget: upgraded tables from empty to revision g1" in out
    assert await store.scalar("SELECT version_num FROM alembic_version_gadget") == "g1"

    assert await hub_cli("db", "upgrade", "-c", str(config)) == 0
    assert f"{shown}: gadget: already at tables revision g1" in capsys.readouterr().out.splitlines()

    (versions / "g2_colour.py").write_text(REVISION_2)
    assert await hub_cli("db", "upgrade", "-c", str(config)) == 0
    assert "gadget: upgraded tables from g1 to revision g2" in capsys.readouterr().out


async def test_db_revision_writes_the_next_revision_and_autogenerates_from_the_metadata(
    db_url: str, store: Store, versions: Path, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
):
    metadata = gadget_metadata(colour=True)

    def plugins_with_gadget(*args: Any, **kwargs: Any):
        manager = load_plugins(*args, **kwargs)
        manager.register(Gadget(versions, metadata=metadata), "gadget")
        return manager

    monkeypatch.setattr(cli, "load_plugins", plugins_with_gadget)
    config = tmp_path / "config.yaml"
    config.write_text(f"storage:\n  db_url: {db_url}\n")
    assert await hub_cli("db", "upgrade", "-c", str(config)) == 0

    assert (
        await hub_cli("db", "revision", "--plugin", "gadget", "-m", "add colour", "--autogenerate", "-c", str(config))
        == 0
    )
    written = Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("Wrote "))
    assert written.parent == versions
    source = written.read_text()
    assert "down_revision = 'g1'" in source
    assert "batch_alter_table('gadget_items'" in source  # portable: recreates the table on SQLite, ALTERs elsewhere
    assert "add_column(sa.Column('colour'" in source
    assert "nodes" not in source and "telemetry" not in source  # never the core's (or anyone else's) tables

    assert await hub_cli("db", "upgrade", "-c", str(config)) == 0
    async with store.engine.connect() as conn:
        columns = await conn.run_sync(lambda sync: sa.inspect(sync).get_columns("gadget_items"))
    assert [column["name"] for column in columns] == ["id", "label", "colour"]

    assert await hub_cli("db", "revision", "--plugin", "gadget", "-m", "empty one", "-c", str(config)) == 0
    empty = Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("Wrote "))
    assert f"down_revision = '{written.name.split('_')[0]}'" in empty.read_text()

    assert await hub_cli("db", "revision", "--plugin", "nobody", "-m", "x", "-c", str(config)) == 1
    refusal = capsys.readouterr().err  # lists every owner loaded here (the installed plugins' too)
    assert refusal.startswith("No migrations named 'nobody'; registered: ")
    assert {"gadget", "http", "storage"} <= set(refusal.split("registered: ")[1].strip().split(", "))


@pytest.mark.parametrize(
    ("name", "folder", "reason"),
    [
        ("Gadget!", "versions", "expected 1-40 of a-z"),
        ("storage", "versions", "already taken"),
        ("gadget", "missing", "is not a directory"),
    ],
)
async def test_a_bad_registration_disables_only_that_plugin(
    hub_factory, versions: Path, tmp_path: Path, name: str, folder: str, reason: str
):
    path = versions if folder == "versions" else tmp_path / folder
    hub = await hub_factory(builtins=STORAGE, plugins=[(Gadget(path, name=name), "gadget")])
    assert reason in hub.plugins.failed["gadget"] and "MigrationError" in hub.plugins.failed["gadget"]
    assert hub.services.has("storage", "history")


async def test_a_failing_plugin_migration_stops_the_start_and_names_the_plugin(
    hub_factory, db_url: str, store: Store, versions: Path
):
    (versions / "g2_broken.py").write_text(BROKEN)
    with pytest.raises(StartupError, match="storage: migrations of gadget failed"):
        await hub_factory({"storage": {"db_url": db_url}}, builtins=STORAGE, plugins=[(Gadget(versions), "gadget")])
    assert await store.scalar("SELECT version_num FROM alembic_version") == head_revision()  # the core's stays


async def test_the_shared_database_commits_rolls_back_and_refuses_after_stop(hub_factory, db_url: str, versions: Path):
    gadget = Gadget(versions)
    hub = await hub_factory({"storage": {"db_url": db_url}}, builtins=STORAGE, plugins=[(gadget, "gadget")])
    database = hub.data[DATA_DATABASE]
    with pytest.raises(ZeroDivisionError):
        async with database.begin() as conn:
            await conn.execute(sa.text("INSERT INTO gadget_items (label) VALUES ('rolled back')"))
            1 / 0  # noqa: B018
    async with database.connect() as conn:
        assert (await conn.execute(sa.text("SELECT label FROM gadget_items"))).all() == [("set up",)]

    await hub.async_stop()
    with pytest.raises(StorageUnavailable, match="storage has stopped") as info:
        async with database.connect():
            pass
    assert isinstance(info.value, HubError)


async def test_an_unreachable_database_is_storage_unavailable_for_services_and_plugins(
    hub_factory, hub_postgres_url: str, versions: Path
):
    url = sa.make_url(hub_postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    through_proxy = url.set(host="127.0.0.1", port=await proxy.start()).render_as_string(hide_password=False)
    config = {"storage": {"db_url": through_proxy, "shutdown_timeout": 0.5}}
    hub = await hub_factory(config, builtins=STORAGE, plugins=[(Gadget(versions), "gadget")])
    database = hub.data[DATA_DATABASE]

    with pytest.raises(StorageUnavailable, match=r"query failed: the database is unavailable"):
        async with database.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
            await proxy.cut()  # the server vanishes mid-conversation
            await conn.execute(sa.text("SELECT 1"))
    with pytest.raises(StorageUnavailable, match=r"storage\.history failed: the database is unavailable"):
        await hub.services.call("storage", "history", {"node_id": "n", "key": "t", "start": 0, "end": 1})
    with pytest.raises(StorageUnavailable, match="cannot connect to the database"):
        async with database.begin() as conn:
            await conn.execute(sa.text("SELECT 1"))
