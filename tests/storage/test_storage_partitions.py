"""PostgreSQL at fleet scale: time partitions made ahead and dropped by retention, dedupe across partitions,
rollups against the raw rows (late data, concurrent writers), and migration 0004 on a populated table."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command
from storage_helpers import NODE_A, NODE_B, T0, Store, assert_rollups_match_raw, asyncpg_dsn, committed, report

from hub.plugins.storage.migrate import alembic_config, head_revision, upgrade
from hub.plugins.storage.partitions import ensure_partitions, partition_name
from hub.plugins.storage.rollups import wait_folded
from hub.testing import FakeClock

DAY = 86400.0


@pytest.fixture
def db_url(hub_postgres_url: str) -> str:
    """PostgreSQL only: these are its partitions and rollups."""
    return hub_postgres_url


async def _partitions(store: Store, table: str) -> set[str]:
    rows = await store.all(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:t AS regclass)",
        t=table,
    )
    return {row[0] for row in rows}


async def test_partitions_are_made_ahead_at_start_and_idempotently(storage_hub, store: Store):
    hub = await storage_hub(partition_days_ahead=2)
    expected = {partition_name("telemetry", (T0 // DAY + day) * DAY) for day in range(3)}
    assert expected | {"telemetry_default"} == await _partitions(store, "telemetry")
    assert len(await _partitions(store, "rollup_1m")) == 4 and len(await _partitions(store, "rollup_1h")) >= 2
    assert hub.metrics.value("partitions_made") >= 7
    engine = sa.ext.asyncio.create_async_engine(store.url)
    try:
        assert await ensure_partitions(engine, T0, 2) == []  # nothing new: idempotent
        assert await ensure_partitions(engine, T0 + DAY, 2) == [
            partition_name("telemetry", (T0 // DAY + 3) * DAY),
            partition_name("rollup_1m", (T0 // DAY + 3) * DAY),
        ]
    finally:
        await engine.dispose()
    # Today's row lands in today's partition, not in the default one.
    report(hub, NODE_A, {"temperature": 1.0}, T0)
    await committed(hub)
    where = await store.scalar("SELECT tableoid::regclass::text FROM telemetry")
    assert where == partition_name("telemetry", T0)


async def test_rows_outside_the_made_range_are_kept_and_move_into_their_partition_later(storage_hub, store: Store):
    hub = await storage_hub(partition_days_ahead=1)
    report(hub, NODE_A, {"temperature": 1.0}, T0 - 400 * DAY)  # a node with a clock far behind
    report(hub, NODE_A, {"temperature": 2.0}, T0 + 30 * DAY)  # and one far ahead
    await committed(hub)
    assert await store.all("SELECT tableoid::regclass::text, states->>'temperature' FROM telemetry ORDER BY ts") == [
        ("telemetry_default", "1.0"),
        ("telemetry_default", "2.0"),
    ]
    engine = sa.ext.asyncio.create_async_engine(store.url)
    try:  # the day the future row belongs to comes: its partition is made, and the row moves into it
        await ensure_partitions(engine, T0 + 30 * DAY, 0)
    finally:
        await engine.dispose()
    rows = await store.all("SELECT tableoid::regclass::text, ts FROM telemetry ORDER BY ts")
    assert rows == [("telemetry_default", T0 - 400 * DAY), (partition_name("telemetry", T0 + 30 * DAY), T0 + 30 * DAY)]


async def test_retention_drops_whole_partitions_and_keeps_the_rest(storage_hub, store: Store, hub_clock: FakeClock):
    hub = await storage_hub(keep_days=30, rollup_keep_days=365, partition_days_ahead=1, batch_size=10_000)
    for i in range(100):
        report(hub, NODE_A, {"temperature": float(i)}, T0 + i * 60, dedupe=i + 1)
    report(hub, NODE_A, {"temperature": 5.0}, T0 - 40 * DAY, dedupe=1000)  # old, in the default partition
    await committed(hub)
    await hub.services.call("storage", "fold", {})
    old_day = partition_name("telemetry", T0)
    assert old_day in await _partitions(store, "telemetry")

    hub_clock.now = T0 + 45 * DAY
    await hub.services.call("storage", "fold", {})  # makes no partition: the clock only matters to retention
    result = await hub.services.call("storage", "purge", {})
    assert result["partitions_dropped"] >= 2  # T0's day (and the next) of telemetry and of rollup_1m
    assert result["telemetry"] == 1  # the default partition's old row, deleted row by row
    assert old_day not in await _partitions(store, "telemetry")
    assert partition_name("rollup_1m", T0) not in await _partitions(store, "rollup_1m")
    assert await store.scalar("SELECT count(*) FROM telemetry") == 0
    assert await store.scalar("SELECT count(*) FROM telemetry_dedupe") == 0  # keys go with their rows
    assert await store.scalar("SELECT count(*) FROM rollup_1m") == 0
    assert await store.scalar("SELECT sum(n) FROM rollup_1h") == 101  # hours are kept a year
    hub_clock.now = T0 + 400 * DAY
    await hub.services.call("storage", "purge", {})
    assert await store.scalar("SELECT count(*) FROM rollup_1h") == 0


async def test_a_redelivered_message_stamped_on_receipt_is_stored_once_whatever_its_time(storage_hub, store: Store):
    hub = await storage_hub(partition_days_ahead=3)
    report(hub, NODE_A, {"temperature": 1.0}, T0, dedupe=42, stamped=True)
    await committed(hub)
    # The same message again, stamped on receipt a day later (another partition), and twice in one batch.
    report(hub, NODE_A, {"temperature": 1.0}, T0 + DAY, dedupe=42, stamped=True)
    report(hub, NODE_A, {"temperature": 3.0}, T0 + DAY, dedupe=43, stamped=True)
    report(hub, NODE_A, {"temperature": 3.0}, T0 + DAY + 1, dedupe=43, stamped=True)
    report(hub, NODE_B, {"temperature": 1.0}, T0, dedupe=42, stamped=True)  # another node's 42 is another message
    await committed(hub)
    rows = await store.all("SELECT node_ref, ts, dedupe FROM telemetry ORDER BY node_ref, ts")
    assert [(ts, dedupe) for _, ts, dedupe in rows] == [(T0, 42), (T0 + DAY, 43), (T0, 42)]
    assert hub.metrics.value("storage_duplicates") == 2
    assert await store.scalar("SELECT count(*) FROM telemetry_dedupe") == 3  # the keys of what was stored


async def test_a_redelivered_message_with_its_own_time_is_stored_once(storage_hub, store: Store):
    """The unique index on (node, ts, dedupe) catches it, in a later batch or in the same one; no key table row."""
    hub = await storage_hub(partition_days_ahead=3)
    t1 = T0 + 0.5  # the node's own time: not the hub's clock (T0), which would mark it stamped on receipt
    report(hub, NODE_A, {"temperature": 1.0}, t1, dedupe=42)
    report(hub, NODE_A, {"humidity": 50}, t1 + 1)  # no key: always stored
    await committed(hub)
    report(hub, NODE_A, {"temperature": 1.0}, t1, dedupe=42)  # redelivered
    report(hub, NODE_A, {"temperature": 2.0}, t1 + DAY, dedupe=43)
    report(hub, NODE_A, {"temperature": 2.0}, t1 + DAY, dedupe=43)  # twice in one batch
    report(hub, NODE_A, {"humidity": 50}, t1 + 1)  # no key, the same again: stored again
    report(hub, NODE_B, {"temperature": 1.0}, t1, dedupe=42)  # another node's
    await committed(hub)
    rows = await store.all("SELECT node_ref, ts, dedupe FROM telemetry ORDER BY node_ref, ts, dedupe")
    assert [(ts, dedupe) for _, ts, dedupe in rows] == [
        (t1, 42),
        (t1 + 1, None),
        (t1 + 1, None),
        (t1 + DAY, 43),
        (t1, 42),
    ]
    assert hub.metrics.value("storage_duplicates") == 2
    assert await store.scalar("SELECT count(*) FROM telemetry_dedupe") == 0


async def test_rollups_equal_raw_aggregates_with_late_data(storage_hub, store: Store):
    hub = await storage_hub(partition_days_ahead=1, batch_size=500)
    rng = random.Random(7)
    for i in range(3000):
        states: dict[str, Any] = {"temperature": round(rng.uniform(-20, 40), 2), "door": rng.random() < 0.5}
        if i % 7 == 0:
            states["mode"] = "eco"  # strings are not rolled up
        if i % 11 == 0:
            states["humidity"] = rng.randint(0, 100)
        report(hub, rng.choice((NODE_A, NODE_B)), states, T0 + i * 17.3)
    await committed(hub)
    first = await hub.services.call("storage", "fold", {})
    assert first["minutes"] > 0 and first["hours"] > 0
    await assert_rollups_match_raw(store)
    # Late data for buckets already folded (and for a day without a partition), then fold again.
    for i in range(200):
        report(hub, NODE_A, {"temperature": float(i), "door": True}, T0 + i * 13.1, dedupe=10_000 + i)
    report(hub, NODE_B, {"temperature": 99.0}, T0 - 3 * DAY)
    await committed(hub)
    await hub.services.call("storage", "fold", {})
    await assert_rollups_match_raw(store)
    # Nothing new: a fold changes nothing.
    assert (await hub.services.call("storage", "fold", {}))["minutes"] == 0
    await assert_rollups_match_raw(store)


async def test_history_resolutions(storage_hub, store: Store, hub_clock: FakeClock):
    hub = await storage_hub(partition_days_ahead=1, batch_size=10_000)
    start = T0 // 3600 * 3600  # hour-aligned, so rollup buckets fall exactly into chart buckets
    for i in range(2 * 24 * 120):  # two days of 30 s readings
        report(hub, NODE_A, {"temperature": float(i % 100)}, start + i * 30)
    await committed(hub)
    await hub.services.call("storage", "fold", {})

    async def history(resolution: str, points: int) -> dict[str, Any]:
        query = {"node_id": NODE_A, "key": "temperature", "start": start, "end": start + 2 * DAY}
        return await hub.services.call("storage", "history", {**query, "points": points, "resolution": resolution})

    raw = await history("raw", 48)
    for resolution in ("1m", "1h", "auto"):
        rolled = await history(resolution, 48)
        assert rolled["resolution"] == ("1h" if resolution == "auto" else resolution)
        assert rolled["buckets"] == [{**bucket, "avg": pytest.approx(bucket["avg"])} for bucket in raw["buckets"]], (
            resolution
        )
    assert (await history("auto", 2000))["resolution"] == "1m"  # 86 s buckets
    assert (await history("auto", 5000))["resolution"] == "raw"  # 35 s buckets


async def test_migration_0004_on_a_populated_table_and_back(store: Store):
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(connection=sync), "0003"))
    await store.execute(
        "INSERT INTO nodes (node_id, name, description, status, attributes) VALUES ('n1', 'n1', '', 'unknown', '{}')"
    )
    await store.execute(
        "INSERT INTO telemetry (node_ref, ts, states, dedupe) SELECT 1, :t0 + g * 30, "
        "jsonb_build_object('temperature', g % 50, 'door', g % 2 = 0, 'mode', 'x'), "
        "CASE WHEN g % 3 = 0 THEN g END FROM generate_series(0, 4999) g",
        t0=T0,
    )
    assert await upgrade(store.engine) == ("0003", head_revision())
    assert await store.scalar("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'telemetry'::regclass") == 1
    assert {"telemetry_legacy", "telemetry_default"} <= await _partitions(store, "telemetry")
    assert await store.scalar("SELECT count(*) FROM telemetry") == 5000
    assert await store.scalar("SELECT count(*) FROM telemetry_dedupe") == 1667  # the old keys still dedupe
    await assert_rollups_match_raw(store)  # backfilled
    # The legacy partition's indexes serve the partitioned ones (adopted, not built again).
    indexes = await store.all(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'telemetry_legacy'::regclass ORDER BY 1"
    )
    # 0005 dropped txid and its index; 0008 replaced (node_ref, ts) by the unique index and added the epoch's.
    assert [row[0] for row in indexes] == ["telemetry_legacy_epoch_idx", "telemetry_legacy_node_ref_ts_dedupe_idx"]
    assert await upgrade(store.engine) == (head_revision(), head_revision())  # idempotent

    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(connection=sync), "0003"))
    assert await store.scalar("SELECT count(*) FROM telemetry") == 5000
    assert await store.scalar("SELECT to_regclass('rollup_1m')") is None
    assert await upgrade(store.engine) == ("0003", head_revision())
    await assert_rollups_match_raw(store)


async def test_migration_0004_while_a_previous_version_keeps_writing(store: Store):
    """Online: rows written during every step of the upgrade are all kept, and each is rolled up at most once."""
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(connection=sync), "0003"))
    await store.execute(
        "INSERT INTO telemetry (node_ref, ts, states) SELECT 1, :t0 + g, jsonb_build_object('v', g) "
        "FROM generate_series(0, 19999) g",
        t0=T0,
    )
    writer = await asyncpg.connect(asyncpg_dsn(store.url))
    done = asyncio.Event()
    written = 0

    async def keep_writing() -> None:  # what a hub of the previous version does: short transactions
        nonlocal written
        await writer.execute("SET statement_timeout = '60s'")
        while not done.is_set():
            await writer.execute(
                "INSERT INTO telemetry (node_ref, ts, states, dedupe) VALUES (2, $1, jsonb_build_object('v', $2::bigint), $2)",
                T0 + 100_000 + written,
                written,
            )
            written += 1
            await asyncio.sleep(0.001)

    writing = asyncio.create_task(keep_writing())
    try:
        await asyncio.sleep(0.05)
        before_upgrade = written
        assert await asyncio.wait_for(upgrade(store.engine), 120) == ("0003", head_revision())
        await asyncio.sleep(0.05)  # a few more rows, into the partitioned table
    finally:
        done.set()
        await asyncio.wait_for(writing, 60)
        await writer.close()
    assert written > 0
    assert await store.scalar("SELECT count(*) FROM telemetry WHERE node_ref = 2") == written
    # Every row committed before the swap has its dedupe key (rows written after it by a process of the
    # previous version have none: the writer is sequential, so the keyed rows are the first ones).
    keys = [row[0] for row in await store.all("SELECT dedupe FROM telemetry_dedupe WHERE node_ref = 2 ORDER BY 1")]
    assert len(keys) >= before_upgrade and keys == list(range(len(keys)))
    engine = sa.ext.asyncio.create_async_engine(store.url)
    try:
        await wait_folded(engine)
    finally:
        await engine.dispose()
    # The writer's rows up to the upgrade to 0005 are folded, exactly once; those it wrote after are not (a
    # process of the previous version appends no deltas).  It writes in sequence, so the folded ones are a prefix.
    folded = await store.scalar("SELECT sum(n) FROM rollup_1m WHERE node_ref = 2")
    assert before_upgrade <= folded <= written
    await assert_rollups_match_raw(store, f"(t.node_ref = 1 OR t.dedupe < {folded})")
