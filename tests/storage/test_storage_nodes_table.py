"""PostgreSQL's ``nodes`` table keeps room on its pages, so the writer's ``last_seen`` updates are HOT (migration 0007)."""

from __future__ import annotations

import asyncpg
import pytest
from alembic import command
from storage_helpers import Store, asyncpg_dsn

from hub.plugins.storage.migrate import alembic_config, head_revision, upgrade
from hub.plugins.storage.schema import NODES_FILLFACTOR
from hub.plugins.storage.sink_postgres import _UPDATE_LAST_SEEN

NODES = 300


@pytest.fixture
def db_url(hub_postgres_url: str) -> str:
    """PostgreSQL only: SQLite has no fill factor."""
    return hub_postgres_url


async def _fillfactor(store: Store) -> list[str] | None:
    return await store.scalar("SELECT reloptions FROM pg_class WHERE relname = 'nodes'")


async def _insert_nodes(store: Store) -> None:
    await store.execute(
        "INSERT INTO nodes (node_id, name, status, attributes, last_seen)"
        " SELECT 'n' || i, 'node ' || i, 'online', '{\"ip\": \"10.0.0.1\"}', 1e9 FROM generate_series(1, :n) AS i",
        n=NODES,
    )


async def _hot_updates_of_a_last_seen_batch(store: Store) -> tuple[int, int]:
    """(rows updated, of which HOT) when the writer's statement moves every node's last_seen, in one transaction."""
    db = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        refs = [row["id"] for row in await db.fetch("SELECT id FROM nodes ORDER BY id")]
        async with db.transaction():
            status = await db.execute(_UPDATE_LAST_SEEN, refs, [2e9] * len(refs))
            hot = await db.fetchval("SELECT pg_stat_get_xact_tuples_hot_updated('nodes'::regclass)")
        return int(status.rsplit(" ", 1)[-1]), hot
    finally:
        await db.close()


async def test_last_seen_updates_stay_on_their_page(store: Store):
    await upgrade(store.engine)
    assert await _fillfactor(store) == [f"fillfactor={NODES_FILLFACTOR}"]
    await _insert_nodes(store)
    assert await _hot_updates_of_a_last_seen_batch(store) == (NODES, NODES)


async def test_0007_downgrade_resets_the_fill_factor(store: Store):
    await upgrade(store.engine)
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(connection=sync), "0006"))
    assert await _fillfactor(store) is None
    await _insert_nodes(store)
    updated, hot = await _hot_updates_of_a_last_seen_batch(store)
    assert updated == NODES and hot < NODES // 2  # full pages: most new versions go elsewhere, with index entries
    assert await upgrade(store.engine) == ("0006", head_revision())
    assert await _fillfactor(store) == [f"fillfactor={NODES_FILLFACTOR}"]
