"""Rollup epochs (PostgreSQL): deltas held in a writer's memory are never lost nor counted twice.

A writer that dies with an open epoch, a writer whose epoch is recovered while it is still writing, a seal
that comes after the recovery, a recovery that waits for a batch still committing, a failed write, readings
without a key, and migrations 0006 and 0008 up and down with an epoch open: after each, the rollups equal the
raw rows.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import pytest
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from storage_helpers import T0, Store, assert_rollups_match_raw, asyncpg_dsn

from hub.plugins.storage.batch import PreparedRow, WritePlan
from hub.plugins.storage.jsoncodec import dumps
from hub.plugins.storage.migrate import alembic_config, upgrade
from hub.plugins.storage.rollup_epochs import RollupEpochs, recover_abandoned
from hub.plugins.storage.rollups import wait_folded
from hub.plugins.storage.sink_postgres import PostgresSink, _write_telemetry

IDS = {f"n{ref}": ref for ref in range(1, 4)}
HOUR = 3600.0


@pytest.fixture
def db_url(hub_postgres_url: str) -> str:
    """PostgreSQL only: SQLite has no rollups."""
    return hub_postgres_url


@pytest.fixture
async def engine(store: Store) -> Any:
    await upgrade(store.engine)
    engine = create_async_engine(store.url)
    yield engine
    await engine.dispose()


class Messages:
    """Batches of messages with their own keys, numbers and booleans, over a few minutes and three nodes."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._next = 0

    def plan(self, count: int) -> WritePlan:
        rows: list[PreparedRow] = []
        for _ in range(count):
            states = {"v": self._rng.randint(-50, 50), "f": self._rng.random(), "on": self._rng.random() < 0.5}
            rows.append(
                (
                    f"n{self._rng.randint(1, 3)}",
                    T0 + self._rng.uniform(0, 300),
                    dumps(states),
                    self._next,
                    states,
                    False,
                )
            )
            self._next += 1
        return WritePlan(rows=rows)

    async def write(self, sink: PostgresSink, count: int, batches: int = 1) -> None:
        """``batches`` batches of ``count`` messages, each written (and committed) by ``sink``."""
        for _ in range(batches):
            await sink.write(self.plan(count), IDS)


async def _settle(engine: AsyncEngine, store: Store, readings: int) -> None:
    """Recover every open epoch (as after the writers are gone), fold, and compare with the raw rows, which
    must hold ``readings`` values of ``v``."""
    await recover_abandoned(engine, 0)
    await wait_folded(engine)
    assert await store.scalar("SELECT count(*) FROM rollup_epochs") == 0
    assert await store.scalar("SELECT count(*) FROM rollup_pending") == 0
    await assert_rollups_match_raw(store)
    assert await store.scalar("SELECT sum(n) FROM rollup_1m WHERE key = 'v'") == readings


async def test_a_writer_that_dies_with_an_open_epoch_loses_nothing(engine: AsyncEngine, store: Store):
    messages = Messages(1)
    sink = PostgresSink(engine, rollup_window=HOUR)
    await messages.write(sink, 200, batches=5)
    assert await store.scalar("SELECT count(*) FROM rollup_pending") == 0  # held in the writer's memory
    del sink  # gone without sealing, as after kill -9
    assert await recover_abandoned(engine, HOUR) == 0  # not old enough to be taken for abandoned
    assert await recover_abandoned(engine, 0) == 1
    await _settle(engine, store, 1000)


async def test_an_epoch_recovered_under_a_live_writer_is_counted_once(engine: AsyncEngine, store: Store):
    """A writer merely slow looks abandoned: recovery counts its rows, the writer drops its copy and goes on."""
    messages = Messages(2)
    sink = PostgresSink(engine, rollup_window=HOUR)
    await messages.write(sink, 150, batches=3)
    assert await recover_abandoned(engine, 0) == 1
    await messages.write(sink, 150, batches=3)  # the first of these finds its epoch gone and opens another
    assert await store.scalar("SELECT count(*) FROM rollup_epochs") == 1
    await sink.seal()
    await _settle(engine, store, 900)


async def test_a_seal_after_the_recovery_writes_nothing(engine: AsyncEngine, store: Store):
    messages = Messages(3)
    sink = PostgresSink(engine, rollup_window=HOUR)
    await messages.write(sink, 300)
    assert await recover_abandoned(engine, 0) == 1
    await sink.seal()
    assert sink.seal_after() is None
    await _settle(engine, store, 300)


async def test_epochs_sealed_in_the_batches_that_follow_their_window(engine: AsyncEngine, store: Store):
    messages = Messages(4)
    sink = PostgresSink(engine, rollup_window=0.0)  # due at once: every batch seals the previous epoch
    for _ in range(4):
        await messages.write(sink, 100)
        assert await store.scalar("SELECT count(*) FROM rollup_epochs") == 1
    assert await store.scalar("SELECT count(DISTINCT epoch) FROM telemetry") == 4
    assert sink.seal_after() is not None and sink.seal_after() <= 0
    await sink.seal()
    await _settle(engine, store, 400)


async def test_an_epoch_that_holds_too_many_groups_is_sealed_early(engine: AsyncEngine, store: Store):
    """Readings scattered over many minutes (a backfill, a broken clock) cannot grow the accumulator unbounded."""
    sink = PostgresSink(engine, rollup_window=HOUR, max_groups=50)
    states = {"v": 1}
    rows: list[PreparedRow] = [("n1", T0 + 60 * i, dumps(states), i, states, False) for i in range(80)]  # 80 minutes
    await sink.write(WritePlan(rows=rows), IDS)
    assert sink.seal_after() == 0.0
    await sink.write(WritePlan(rows=[("n2", T0, dumps(states), 1, states, False)]), IDS)  # seals, then opens the next
    assert await store.scalar("SELECT sum(n) FROM rollup_pending") == 80
    assert 0 < sink.seal_after() <= HOUR  # type: ignore[operator]
    await sink.seal()
    await _settle(engine, store, 81)


async def test_recovery_waits_for_a_batch_still_committing(engine: AsyncEngine, store: Store):
    """Recovery deletes the epoch's row, then reads its rows: a batch that committed in between is in them."""
    messages = Messages(5)
    epochs = RollupEpochs(HOUR)
    db = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        async with (
            db.transaction()
        ):  # a first batch opens the epoch (its deltas go unaccumulated: recovery counts them)
            turn = await epochs.enter(db)
            await _write_telemetry(db, messages.plan(50).rows, IDS, {}, turn.epoch)
        epochs.committed(turn)
        transaction = db.transaction()
        await transaction.start()
        turn = await epochs.enter(db)
        assert not turn.fresh
        assert (await _write_telemetry(db, messages.plan(250).rows, IDS, {}, turn.epoch))[:3] == (250, 0, 0)
        recovering = asyncio.create_task(recover_abandoned(engine, 0))
        await asyncio.sleep(0.2)  # let it reach the epoch's row, which the open batch holds
        await transaction.commit()
        assert await asyncio.wait_for(recovering, 30) == 1
    finally:
        await db.close()
    await _settle(engine, store, 300)


async def test_a_failed_write_leaves_its_epoch_to_recovery(engine: AsyncEngine, store: Store):
    messages = Messages(6)
    sink = PostgresSink(engine, rollup_window=HOUR)
    await messages.write(sink, 200)
    bad = messages.plan(50)
    bad.status = [("n1", "not a time", "online", "offline", None)]  # type: ignore[list-item]
    with pytest.raises(asyncpg.PostgresError):
        await sink.write(bad, IDS)
    assert sink.seal_after() is None  # abandoned: the accumulator is gone, the epoch's row stays
    await messages.write(sink, 100)
    await sink.seal()
    assert await store.scalar("SELECT count(*) FROM rollup_epochs") == 1  # the abandoned one
    await _settle(engine, store, 300)


async def test_readings_without_a_key_are_held_in_the_epoch_and_recovered_with_it(engine: AsyncEngine, store: Store):
    """Every row carries its epoch (the ESPHome plugin's readings have no dedupe key): none is written per batch,
    and a writer that dies loses none of them."""
    sink = PostgresSink(engine, rollup_window=HOUR)
    states = {"v": 4, "s": "text"}
    rows: list[PreparedRow] = [("n1", T0 + i, dumps(states), None, states, False) for i in range(10)]
    rows += [("n2", T0 + i, dumps(states), i, states, False) for i in range(10)]
    await sink.write(WritePlan(rows=rows), IDS)
    assert await store.scalar("SELECT count(*) FROM rollup_pending") == 0  # all held in the writer's memory
    assert await store.scalar("SELECT count(*) FROM telemetry WHERE epoch IS NULL") == 0
    assert await recover_abandoned(engine, 0) == 1  # the writer is gone: its epoch is counted from the rows
    await _settle(engine, store, 20)


async def _to(store: Store, revision: str, direction: str = "upgrade") -> None:
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: getattr(command, direction)(alembic_config(connection=sync), revision))


async def test_migration_0006_up_and_down_with_an_epoch_open(store: Store):
    await _to(store, "0005")
    await store.execute(
        "INSERT INTO telemetry_dedupe (node_ref, dedupe, ts) SELECT 9, g, :t FROM generate_series(1, 100) g", t=T0
    )
    await upgrade(store.engine)  # prepare_online adds the column and builds its index concurrently
    assert await store.scalar("SELECT count(*) FROM telemetry_dedupe WHERE epoch IS NULL") == 100
    index = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('ix_telemetry_dedupe_epoch')"
    assert await store.scalar(index) is True
    engine = create_async_engine(store.url)
    try:
        await Messages(7).write(PostgresSink(engine, rollup_window=HOUR), 120)
        await _to(store, "0005", "downgrade")  # the open epoch's rows become pending deltas
        assert await store.scalar("SELECT to_regclass('rollup_epochs')") is None
        assert await store.scalar("SELECT sum(n) FROM rollup_pending WHERE key = 'v'") == 120
        await wait_folded(engine)
        await assert_rollups_match_raw(store)
    finally:
        await engine.dispose()
