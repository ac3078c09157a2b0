"""Migration 0008 (PostgreSQL): redeliveries are caught by telemetry's unique index, and rows carry their epoch.

Up, with the rows, keys and open epoch a writer of the previous version left: the partitions' indexes are
built concurrently and adopted, a redelivery of an old message is refused, and the old epoch is recovered from
its keys.  Down, with a new writer's epoch open: it is recovered from its rows, and every keyed row gets its key
back so the previous version still recognises a redelivery.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine
from storage_helpers import T0, Store, assert_rollups_match_raw

from hub.plugins.storage.batch import PreparedRow, WritePlan
from hub.plugins.storage.jsoncodec import dumps
from hub.plugins.storage.migrate import alembic_config, upgrade
from hub.plugins.storage.rollup_epochs import recover_abandoned
from hub.plugins.storage.rollups import wait_folded
from hub.plugins.storage.sink_postgres import PostgresSink

IDS = {"n1": 1, "n2": 2}
HOUR = 3600.0
OLD = 100
"""Messages the previous version stored (node 1, dedupe 1..100, at T0 + dedupe)."""


@pytest.fixture
def db_url(hub_postgres_url: str) -> str:
    """PostgreSQL only: SQLite keeps its own unique index and has no rollups."""
    return hub_postgres_url


async def _to(store: Store, revision: str, direction: str = "upgrade") -> None:
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: getattr(command, direction)(alembic_config(connection=sync), revision))


async def _left_by_the_previous_version(store: Store) -> None:
    """At 0007: rows with their keys, the keys carrying an epoch whose writer died before sealing it."""
    await _to(store, "0007")
    await store.execute("INSERT INTO rollup_epochs (owner) VALUES ('old:1')")
    epoch = await store.scalar("SELECT max(id) FROM rollup_epochs")
    await store.execute(
        "INSERT INTO telemetry (node_ref, ts, states, dedupe) "
        "SELECT 1, :t + g, jsonb_build_object('v', g), g FROM generate_series(1, :n) g",
        t=T0,
        n=OLD,
    )
    await store.execute(
        "INSERT INTO telemetry_dedupe (node_ref, dedupe, ts, epoch) SELECT 1, g, :t + g, :e FROM generate_series(1, :n) g",
        t=T0,
        n=OLD,
        e=epoch,
    )


def _rows(first: int, count: int, *, ref: str = "n2") -> list[PreparedRow]:
    """Messages with their own time: ``v`` = dedupe = ``first``.. at T0 + 0.5 + dedupe."""
    return [(ref, T0 + 0.5 + g, dumps({"v": g}), g, {"v": g}, False) for g in range(first, first + count)]


async def test_0008_up_adopts_concurrent_indexes_refuses_old_redeliveries_and_recovers_the_old_epoch(store: Store):
    await _left_by_the_previous_version(store)
    partitions = await store.all(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'telemetry'::regclass"
    )
    assert partitions
    await upgrade(store.engine)  # prepare_online builds each partition's indexes concurrently; the parent adopts them
    for (partition,) in partitions:
        names = await store.all(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = CAST(:p AS regclass) ORDER BY 1",
            p=partition,
        )
        assert [name for (name,) in names] == [f"{partition}_epoch", f"{partition}_node_ts_dedupe"]
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"
    assert await store.scalar(valid, name="uq_telemetry_node_ts_dedupe") is True
    assert await store.scalar(valid, name="ix_telemetry_epoch") is True
    assert await store.scalar("SELECT to_regclass('ix_telemetry_node_ts')") is None

    engine = create_async_engine(store.url)
    try:
        sink = PostgresSink(engine, rollup_window=HOUR)
        old = [("n1", T0 + g, dumps({"v": g}), g, {"v": g}, False) for g in (1, 2, OLD)]  # redelivered
        result = await sink.write(WritePlan(rows=old + _rows(1, 50)), IDS)
        assert (result.stored, result.duplicates) == (50, 3)
        await sink.seal()
        assert await recover_abandoned(engine, 0) == 1  # the old writer's epoch, from its keys
        await wait_folded(engine)
        await assert_rollups_match_raw(store)
        assert await store.scalar("SELECT sum(n) FROM rollup_1m WHERE key = 'v'") == OLD + 50
    finally:
        await engine.dispose()


async def test_0008_down_recovers_open_epochs_and_gives_every_keyed_row_its_key(store: Store):
    await _left_by_the_previous_version(store)
    await upgrade(store.engine)
    engine = create_async_engine(store.url)
    try:
        sink: Any = PostgresSink(engine, rollup_window=HOUR)
        unkeyed = [("n2", T0 + 1000.5 + i, dumps({"v": i}), None, {"v": i}, False) for i in range(10)]
        await sink.write(WritePlan(rows=_rows(1, 120) + unkeyed), IDS)  # an epoch open in the writer's memory
        del sink
        await _to(store, "0007", "downgrade")
        assert await store.scalar("SELECT count(*) FROM rollup_epochs") == 0
        assert await store.scalar("SELECT sum(n) FROM rollup_pending WHERE key = 'v'") == OLD + 120 + 10
        keyless = "SELECT count(*) FROM telemetry AS t WHERE dedupe IS NOT NULL AND NOT EXISTS (SELECT FROM telemetry_dedupe AS d WHERE (d.node_ref, d.dedupe) = (t.node_ref, t.dedupe))"
        assert await store.scalar(keyless) == 0
        assert await store.scalar("SELECT count(*) FROM telemetry_dedupe") == OLD + 120
        assert await store.scalar("SELECT to_regclass('ix_telemetry_node_ts')") is not None
        assert await store.scalar("SELECT to_regclass('uq_telemetry_node_ts_dedupe')") is None
        column = (
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'telemetry' AND column_name = 'epoch'"
        )
        assert await store.scalar(column) == 0
        await wait_folded(engine)
        await assert_rollups_match_raw(store)
    finally:
        await engine.dispose()
