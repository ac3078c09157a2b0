"""PostgreSQL rollups from the writer's deltas: equal to the raw rows after batches with redelivered duplicates
and late readings, with writers storing the same messages concurrently while the fold runs, and after migration
0005 on a database whose previous version left rows unfolded."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from storage_helpers import NODE_A, NODE_B, T0, Store, assert_rollups_match_raw, asyncpg_dsn, committed, report

from hub.plugins.storage.batch import PreparedRow, WritePlan
from hub.plugins.storage.jsoncodec import dumps
from hub.plugins.storage.migrate import alembic_config, head_revision, upgrade
from hub.plugins.storage.rollup_deltas import RollupAccumulator, copy_deltas
from hub.plugins.storage.rollups import fold, wait_folded
from hub.plugins.storage.sink_postgres import PostgresSink, _write_telemetry


@pytest.fixture
def db_url(hub_postgres_url: str) -> str:
    """PostgreSQL only: SQLite has no rollups."""
    return hub_postgres_url


async def test_rollups_equal_raw_after_batches_with_duplicates_and_late_readings(storage_hub, store: Store):
    hub = await storage_hub(partition_days_ahead=1, batch_size=200)
    rng = random.Random(11)
    sent: list[tuple[str, dict[str, Any], float, int]] = []
    for i in range(1500):
        states: dict[str, Any] = {"t": round(rng.uniform(-5, 5), 3), "on": rng.random() < 0.3, "s": "x"}
        if i % 5 == 0:
            states["big"] = 2**63 + i  # beyond int64: PostgreSQL's numeric, a float here
        if i % 9 == 0:
            states["nested"] = {"t": 1}  # not a number: not rolled up
        sent.append((rng.choice((NODE_A, NODE_B)), states, T0 + i * 7.7, i))
        report(hub, *sent[-1])
        if i % 300 == 299:  # redeliveries: earlier messages again, within a batch and across batches
            for node_id, old, ts, dedupe in rng.sample(sent, 40):
                report(hub, node_id, old, ts, dedupe)
    await committed(hub)
    assert hub.metrics.value("storage_duplicates") >= 200
    await hub.services.call("storage", "fold", {})
    await assert_rollups_match_raw(store)
    # More copies (a whole batch of them, and mixed with new ones), and late readings for folded minutes.
    for node_id, old, ts, dedupe in sent[:300]:
        report(hub, node_id, old, ts, dedupe)
    await committed(hub)
    for i in range(100):
        report(hub, NODE_A, {"t": 100.0 + i, "on": True}, T0 + i * 3.1, 10_000 + i)
        report(hub, *sent[i])
    await committed(hub)
    # The writer holds the epoch's deltas in memory (rollup_epochs) until it is sealed: the fold service seals it.
    assert await store.scalar("SELECT count(*) FROM rollup_pending") == 0
    assert await store.scalar("SELECT count(*) FROM rollup_epochs") == 1
    result = await hub.services.call("storage", "fold", {})
    assert result["deltas"] > 0 and result["minutes"] > 0
    assert await store.scalar("SELECT count(*) FROM rollup_pending") == 0  # moved, not copied
    assert await store.scalar("SELECT count(*) FROM telemetry") == 1600
    await assert_rollups_match_raw(store)
    assert (await hub.services.call("storage", "fold", {}))["deltas"] == 0  # nothing new: nothing changes
    await assert_rollups_match_raw(store)


def _rows(rng: random.Random, shared: list[PreparedRow], own: int, count: int) -> list[PreparedRow]:
    """A batch: some messages of the shared pool (what another worker may store too), some of this writer's own."""
    rows = rng.sample(shared, count // 2)
    for _ in range(count - len(rows)):
        states = {"v": rng.randint(-1000, 1000), "f": rng.random(), "b": rng.random() < 0.5}
        rows.append((f"n{own}", T0 + rng.uniform(0, 600), dumps(states), None, states, False))
    rng.shuffle(rows)
    return rows


async def test_two_writers_storing_the_same_messages_while_the_fold_runs(storage_hub, store: Store):
    """Workers sharing a queue, a redelivery to the other worker: each message is stored and rolled up once."""
    await storage_hub(partition_days_ahead=1)
    rng = random.Random(5)
    shared: list[PreparedRow] = [
        (f"n{ref}", T0 + rng.uniform(0, 600), dumps(states), dedupe, states, False)
        for ref in (1, 2, 3)
        for dedupe in range(400)
        for states in [{"v": rng.randint(0, 99), "b": True}]
    ]
    ids = {f"n{ref}": ref for ref in range(1, 6)}
    engines = [create_async_engine(store.url) for _ in range(3)]
    stop = asyncio.Event()

    async def writer(engine: Any, own: int, seed: int) -> None:
        sink, local = PostgresSink(engine, rollup_window=0.05), random.Random(seed)  # epochs sealed mid-run
        for _ in range(12):
            plan = WritePlan(rows=_rows(local, shared, own, local.randint(20, 120)))
            while True:
                try:
                    await sink.write(plan, ids)
                    break
                except asyncpg.DeadlockDetectedError:
                    # Two transactions inserting the same dedupe keys in different orders: PostgreSQL aborts
                    # one, which the storage writer retries like any failed batch; so does this stand-in.
                    continue
        await sink.seal()

    async def folder() -> int:
        folds = 0
        while not stop.is_set():
            folds += (await fold(engines[2])).deltas is not None
            await asyncio.sleep(0)
        return folds

    try:
        folding = asyncio.create_task(folder())
        await asyncio.wait_for(asyncio.gather(writer(engines[0], 4, 1), writer(engines[1], 5, 2)), 120)
        stop.set()
        assert await asyncio.wait_for(folding, 30) > 0
        await wait_folded(engines[2])
    finally:
        for engine in engines:
            await engine.dispose()
    copies = "SELECT count(*) FROM (SELECT node_ref, dedupe FROM telemetry WHERE dedupe IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) c"
    assert await store.scalar(copies) == 0
    assert await store.scalar("SELECT count(DISTINCT node_ref) FROM telemetry") == 5
    await assert_rollups_match_raw(store)


async def test_a_fold_leaves_the_deltas_of_an_open_transaction_for_the_next(storage_hub, store: Store):
    await storage_hub(partition_days_ahead=1)
    engine = create_async_engine(store.url)
    db = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        transaction = db.transaction()
        await transaction.start()
        # Rows and their deltas, as a seal appends them, not yet committed.  No dicts: the texts are parsed.
        rows = [("n1", T0 + i, dumps({"v": i}), None, None, False) for i in range(50)]
        stored, _duplicates, _orphans, inserted = await _write_telemetry(db, rows, {"n1": 1}, {}, None)
        assert stored == 50
        accumulator = RollupAccumulator()
        for records, documents in inserted:
            accumulator.add(records, documents)
        assert await copy_deltas(db, accumulator.rows()) > 0
        assert (await fold(engine)).deltas == 0  # not committed: not in the fold's snapshot, not deleted
        await transaction.commit()
        assert (await wait_folded(engine)).deltas > 0
    finally:
        await db.close()
        await engine.dispose()
    assert await store.scalar("SELECT sum(n) FROM rollup_1m") == 50
    await assert_rollups_match_raw(store)


_PREVIOUS_WRITE = (
    "INSERT INTO telemetry (node_ref, ts, states, dedupe) SELECT :ref, :t0 + g * 11.3, "
    "jsonb_build_object('temperature', (g % 50) / 3.0, 'door', g % 2 = 0, 'mode', 'x', 'count', g), g "
    "FROM generate_series(0, :n - 1) g"
)


async def _to(store: Store, revision: str, direction: str = "upgrade") -> None:
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: getattr(command, direction)(alembic_config(connection=sync), revision))


async def test_migration_0005_folds_what_the_previous_version_left_and_drops_txid(store: Store):
    await _to(store, "0004")
    await store.execute(_PREVIOUS_WRITE, ref=1, t0=T0, n=3000)  # written by the previous version, not folded
    previous_fold = ScriptDirectory.from_config(alembic_config()).get_revision("0005").module.prepare_online
    async with store.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        # Step 1: the previous version's fold, once.  It takes the rows below the server's oldest open transaction
        # (any database's), so on a shared server it may fold all of them or none: either way, nothing twice.
        await autocommit.run_sync(previous_fold)
    await store.execute(_PREVIOUS_WRITE, ref=1, t0=T0 + 5, n=500)  # late rows for folded minutes: still unfolded
    await store.execute(_PREVIOUS_WRITE, ref=2, t0=T0, n=700)
    await _to(store, "0005")  # without step 1 this time: the migration itself folds the rest
    assert await store.scalar("SELECT count(*) FROM rollup_pending") > 0
    engine = create_async_engine(store.url)
    try:
        await wait_folded(engine)
        await assert_rollups_match_raw(store)
        assert await store.scalar("SELECT to_regclass('rollup_state')") is None
        columns = await store.all(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'telemetry'::regclass AND attnum > 0 AND NOT attisdropped"
        )
        assert sorted(row[0] for row in columns) == ["dedupe", "node_ref", "states", "ts"]
        assert await store.scalar("SELECT count(*) FROM pg_class WHERE relname LIKE '%txid%'") == 0

        # Down (pending deltas folded first) and up again through the online path, with unfolded rows between.
        await store.execute("INSERT INTO rollup_pending VALUES (3, 'temperature', :b, 1, 2, 3, 2)", b=T0 // 60 * 60)
        await store.execute(
            "INSERT INTO telemetry (node_ref, ts, states) VALUES (3, :t, '{\"temperature\": 1}'), (3, :t, '{\"temperature\": 2}')",
            t=T0 // 60 * 60,
        )
        await _to(store, "0004", "downgrade")
        assert await store.scalar("SELECT sum(n) FROM rollup_1m WHERE node_ref = 3") == 2
        await store.execute(_PREVIOUS_WRITE, ref=4, t0=T0, n=300)
        assert await upgrade(store.engine) == ("0004", head_revision())
        await wait_folded(engine)
    finally:
        await engine.dispose()
    await assert_rollups_match_raw(store)
    assert await store.scalar("SELECT sum(n) FROM rollup_1m WHERE node_ref = 4") == 300 * 3
