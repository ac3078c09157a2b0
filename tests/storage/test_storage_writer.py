"""The batch writer: what gets stored, when the durability barrier resolves, dedupe, failures and shutdown."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from storage_helpers import NODE_A, NODE_B, T0, Store, committed, report

from hub.core.errors import HubError, StorageOverloaded, StorageUnavailable
from hub.core.registry import Entity, Node
from hub.plugins.storage.schema import telemetry
from hub.testing import wait_until


async def test_nodes_entities_and_telemetry_are_stored(storage_hub, store: Store):
    hub = await storage_hub()
    registry = hub.registry
    node = registry.get_or_register(NODE_A, name="Greenhouse")
    registry.update_node(node, firmware_version="1.2.3", attributes={"ip": "10.0.0.7"})
    registry.ensure_entity(node, "temperature", unit="°C", device_class="temperature", state_class="measurement")
    registry.ensure_entity(node, "door", platform="binary_sensor")
    registry.report_states(node, {"temperature": 21.5, "door": True}, T0, dedupe=7)
    registry.report_states(node, {"temperature": 21.75}, T0 + 30)
    await committed(hub)

    assert await store.all("SELECT node_id, name, firmware_version FROM nodes") == [(NODE_A, "Greenhouse", "1.2.3")]
    entities = await store.all("SELECT key, platform, unit, device_class, state_class FROM entities ORDER BY key")
    assert entities == [
        ("door", "binary_sensor", None, None, None),
        ("temperature", "sensor", "°C", "temperature", "measurement"),
    ]
    rows = await store.all(
        "SELECT n.node_id, t.ts, t.dedupe FROM telemetry t JOIN nodes n ON n.id = t.node_ref ORDER BY t.ts"
    )
    assert rows == [(NODE_A, T0, 7), (NODE_A, T0 + 30, None)]
    async with store.engine.connect() as conn:  # states come back as JSON documents
        states = (await conn.execute(sa.select(telemetry.c.states).order_by(telemetry.c.ts))).scalars().all()
    assert states == [{"temperature": 21.5, "door": True}, {"temperature": 21.75}]
    assert hub.metrics.value("stored_rows") == 2


async def test_barrier_resolves_only_when_the_batch_is_committed(storage_hub, store: Store, db_url: str):
    hub = await storage_hub(flush_interval=0.01)
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    await committed(hub)  # node and entity rows exist; now hold the database's write lock
    async with _write_lock(db_url):
        report(hub, NODE_A, {"temperature": 20.5}, T0 + 1, dedupe=1)
        barrier = hub.durability.barrier()
        assert barrier is not None
        await asyncio.sleep(0.3)  # many flush intervals: the writer is blocked inside its transaction
        assert not barrier.done()
        assert await store.scalar("SELECT count(*) FROM telemetry") == 1
    await asyncio.wait_for(asyncio.shield(barrier), 10)
    assert await store.scalar("SELECT count(*) FROM telemetry") == 2
    assert hub.durability.barrier() is None  # nothing outstanding any more


async def test_barrier_covers_the_batch_being_written(storage_hub, db_url: str):
    """A message that added nothing while a batch is in flight still waits for that batch."""
    hub = await storage_hub(flush_interval=0.01)
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    await committed(hub)
    async with _write_lock(db_url):
        report(hub, NODE_A, {"temperature": 20.5}, T0 + 1)
        first = hub.durability.barrier()
        await asyncio.sleep(0.1)  # the writer sealed the batch and waits for the lock
        assert hub.durability.barrier() is first
    await asyncio.wait_for(asyncio.shield(first), 10)


async def test_redelivered_message_is_stored_once(storage_hub, store: Store):
    hub = await storage_hub()
    report(hub, NODE_A, {"temperature": 20.0}, T0, dedupe=42)
    report(hub, NODE_A, {"temperature": 20.0}, T0, dedupe=42)  # redelivered within the same batch
    report(hub, NODE_B, {"temperature": 20.0}, T0, dedupe=42)  # same dedupe, other node: a different message
    await committed(hub)
    report(hub, NODE_A, {"temperature": 20.0}, T0, dedupe=42)  # redelivered after the commit
    report(hub, NODE_A, {"temperature": 20.1}, T0 + 1, dedupe=43)
    report(hub, NODE_A, {"temperature": 20.1}, T0 + 1)  # no dedupe: always stored
    await committed(hub)
    rows = await store.all("SELECT n.node_id, t.dedupe FROM telemetry t JOIN nodes n ON n.id = t.node_ref")
    assert sorted(rows, key=str) == sorted([(NODE_A, 42), (NODE_A, 43), (NODE_A, None), (NODE_B, 42)], key=str)
    assert hub.metrics.value("storage_duplicates") == 2
    assert hub.metrics.value("stored_rows") == 4


async def test_flushes_by_size_before_the_interval(storage_hub, store: Store):
    hub = await storage_hub(batch_size=50, flush_interval=5)
    for i in range(50):
        report(hub, NODE_A, {"temperature": float(i)}, T0 + i)
    await asyncio.wait_for(asyncio.shield(hub.durability.barrier()), 2)
    assert await store.scalar("SELECT count(*) FROM telemetry") == 50


async def test_failed_write_is_retried_without_losing_the_batch(storage_hub, store: Store):
    hub = await storage_hub(flush_interval=0.01)
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    await committed(hub)
    await store.execute("ALTER TABLE telemetry RENAME TO telemetry_away")
    try:
        report(hub, NODE_A, {"temperature": 21.0}, T0 + 1)
        barrier = hub.durability.barrier()
        await wait_until(lambda: hub.metrics.value("write_errors") >= 1, message="a failed write")
        report(hub, NODE_A, {"temperature": 22.0}, T0 + 2)  # keeps accumulating meanwhile
        assert not barrier.done()
    finally:
        await store.execute("ALTER TABLE telemetry_away RENAME TO telemetry")
    await committed(hub)
    assert barrier.done() and barrier.exception() is None
    assert await store.scalar("SELECT count(*) FROM telemetry") == 3


async def test_readings_beyond_max_pending_are_refused_and_not_acknowledged(storage_hub, store: Store):
    hub = await storage_hub(batch_size=5, max_pending=5, flush_interval=0.2)
    for i in range(5):
        report(hub, NODE_A, {"temperature": float(i)}, T0 + i)
        accepted = hub.durability.barrier()
    report(hub, NODE_A, {"temperature": 99.0}, T0 + 99)  # sixth: no room
    refused = hub.durability.barrier()
    assert refused is not accepted
    with pytest.raises(StorageOverloaded) as info:
        await refused
    assert isinstance(info.value, StorageUnavailable) and isinstance(info.value, HubError)
    await asyncio.wait_for(asyncio.shield(accepted), 10)
    assert hub.metrics.value("storage_dropped_rows", reason="overload") >= 1
    assert await store.scalar("SELECT count(*) FROM telemetry") <= 5


async def test_transports_are_asked_to_pause_while_storage_is_behind(storage_hub, store: Store):
    hub = await storage_hub(batch_size=1000, max_pending=2000, flush_interval=10)  # high water: 1,000 pending
    for i in range(999):
        report(hub, NODE_A, {"temperature": float(i)}, T0 + i)
    assert hub.durability.backlog() is None
    report(hub, NODE_A, {"temperature": 1000.0}, T0 + 1000)
    backlog = hub.durability.backlog()
    assert backlog is not None and not backlog.done()
    assert hub.durability.backlog() is backlog  # one future for everyone until storage caught up
    await asyncio.wait_for(asyncio.shield(backlog), 10)  # done by the commit of those 1,000
    assert hub.durability.backlog() is None
    assert await store.scalar("SELECT count(*) FROM telemetry") == 1000
    assert hub.metrics.value("storage_dropped_rows", reason="overload") == 0


async def test_invalid_readings_are_dropped_and_counted_not_retried(storage_hub, store: Store):
    hub = await storage_hub()
    report(hub, NODE_A, {"temperature": 20.0}, float("nan"))
    report(hub, NODE_A, {"temperature": 20.0}, T0, dedupe=2**70)
    report(hub, NODE_A, {"temperature": 20.0}, "yesterday")  # a plugin's bug: no number
    report(hub, NODE_A, {"note": "nul\x00byte", "big": 2**70}, T0 + 1)  # repaired, not dropped
    await committed(hub)
    assert await store.scalar("SELECT count(*) FROM telemetry") == 1
    assert hub.metrics.value("storage_dropped_rows", reason="invalid") == 3
    assert hub.metrics.value("write_errors") == 0


async def test_shutdown_commits_everything_accepted(storage_hub, store: Store):
    hub = await storage_hub(flush_interval=10, batch_size=100_000)
    for i in range(500):
        report(hub, NODE_A if i % 2 else NODE_B, {"temperature": float(i)}, T0 + i)
    barrier = hub.durability.barrier()
    await asyncio.sleep(0.05)
    assert not barrier.done()
    await hub.async_stop()
    assert barrier.done() and barrier.exception() is None
    assert await store.scalar("SELECT count(*) FROM telemetry") == 500
    assert await store.scalar("SELECT count(*) FROM nodes") == 2


async def test_shutdown_that_cannot_commit_fails_the_barrier(storage_hub, store: Store, db_url: str):
    hub = await storage_hub(flush_interval=0.01, shutdown_timeout=0.3)
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    await committed(hub)
    async with _write_lock(db_url):
        report(hub, NODE_A, {"temperature": 21.0}, T0 + 1)
        barrier = hub.durability.barrier()
        await hub.async_stop()
        with pytest.raises(StorageUnavailable) as info:
            await barrier
        assert isinstance(info.value, HubError)
    assert await store.scalar("SELECT count(*) FROM telemetry") == 1


class _write_lock:
    """Hold the database's write lock on telemetry from another connection (what a busy database looks like)."""

    def __init__(self, db_url: str) -> None:
        self._url = make_url(db_url)

    async def __aenter__(self) -> None:
        if self._url.get_backend_name() == "sqlite":
            self._sqlite = sqlite3.connect(self._url.database, isolation_level=None)
            self._sqlite.execute("BEGIN IMMEDIATE")
        else:
            self._pg = await asyncpg.connect(self._url.set(drivername="postgresql").render_as_string(False))
            self._tx = self._pg.transaction()
            await self._tx.start()
            await self._pg.execute("LOCK TABLE telemetry IN EXCLUSIVE MODE")

    async def __aexit__(self, *exc: object) -> None:
        if self._url.get_backend_name() == "sqlite":
            self._sqlite.rollback()
            self._sqlite.close()
        else:
            await self._tx.rollback()
            await self._pg.close()


async def test_a_whole_fleet_registering_in_one_batch(storage_hub, store: Store):
    hub = await storage_hub(flush_interval=0.2)
    for i in range(300):
        report(hub, f"aa:bb:cc:00:{i // 256:02x}:{i % 256:02x}", {"temperature": 1.0, "humidity": 2, "rssi": -50}, T0)
    await committed(hub)
    assert await store.scalar("SELECT count(*) FROM nodes") == 300
    assert await store.scalar("SELECT count(*) FROM entities") == 900
    assert await store.scalar("SELECT count(*) FROM telemetry") == 300
    assert await store.scalar("SELECT count(DISTINCT node_ref) FROM telemetry") == 300


async def test_summary_is_logged_not_per_message(storage_hub, monkeypatch, caplog):
    from hub.plugins.storage import writer

    hub = await storage_hub(flush_interval=0.01)
    caplog.set_level("INFO", logger=writer.__name__)
    for i in range(10):
        report(hub, NODE_A, {"temperature": float(i)}, T0 + i)
    await committed(hub)
    assert not [r for r in caplog.records if "Stored" in r.getMessage()]  # under 30 s: nothing yet
    monkeypatch.setattr(writer, "SUMMARY_INTERVAL", 0.0)
    report(hub, NODE_B, {"temperature": 1.0}, T0 + 20)
    await committed(hub)
    summaries = [r.getMessage() for r in caplog.records if "Stored" in r.getMessage()]
    assert len(summaries) == 1 and summaries[0].startswith("Stored 11 readings in the last")


async def test_readings_of_a_node_this_writer_never_wrote_write_its_row_first(storage_hub, store: Store):
    """A node another process registered (the fan-out restores it here without an event this writer acts on):
    its first readings make the writer upsert its row, so they get an id instead of being dropped as orphans."""
    hub = await storage_hub(flush_interval=0.01)
    node = Node(node_id=NODE_B, name="elsewhere", entities={"temperature": Entity(key="temperature")})
    hub.registry.restore([node])
    hub.registry.report_states(node, {"temperature": 4.5}, T0, received=T0)
    await committed(hub)
    assert await store.all("SELECT node_id, name, last_seen FROM nodes") == [(NODE_B, "elsewhere", T0)]
    assert await store.all("SELECT t.ts FROM telemetry t JOIN nodes n ON n.id = t.node_ref") == [(T0,)]
    assert hub.metrics.value("storage_dropped_rows", reason="unknown_node") == 0


async def test_a_cancelled_waiter_does_not_fail_the_others(storage_hub):
    hub = await storage_hub(flush_interval=0.2)
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    waiter = asyncio.ensure_future(_await(hub.durability.barrier()))
    await asyncio.sleep(0)
    waiter.cancel()  # e.g. a transport task cancelled at shutdown: cancels the shared future
    report(hub, NODE_A, {"temperature": 21.0}, T0 + 1)
    other = hub.durability.barrier()
    assert not other.cancelled()
    await asyncio.wait_for(asyncio.shield(other), 10)


async def _await(future):
    await future


async def test_a_large_batch_is_written_in_slices(storage_hub, store: Store, db_url: str):
    """A batch grown past ROWS_PER_TURN (a slow or absent database) is stored whole, each message once, also when a
    later slice repeats a message of an earlier one (PostgreSQL: that slice's COPY falls back alone)."""
    from hub.plugins.storage.batch import ROWS_PER_TURN

    count = 2 * ROWS_PER_TURN + 123
    hub = await storage_hub(batch_size=100_000, flush_interval=0.01)
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    await committed(hub)
    for i in range(count):  # all in one batch: nothing awaits in between
        report(hub, NODE_A, {"temperature": float(i)}, T0 + 1 + i, dedupe=i)
    report(hub, NODE_A, {"temperature": 0.0}, T0 + 1, dedupe=0)  # the first one again, in the last slice
    await committed(hub, timeout=30)
    assert await store.scalar("SELECT count(*) FROM telemetry") == 1 + count
    assert hub.metrics.value("storage_duplicates") == 1
    assert hub.metrics.value("stored_rows") == 1 + count


async def test_a_node_removed_and_registered_again_while_a_batch_is_written_keeps_its_new_readings(
    storage_hub, store: Store, db_url: str
):
    """A node re-registered gets a new row and its readings go there, whichever batch they fall in, while the
    removed row and its readings are gone."""
    hub = await storage_hub(flush_interval=0.05)
    registry = hub.registry
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    await committed(hub)
    async with _write_lock(db_url):
        registry.update_node(registry.get(NODE_A), attributes={"ip": "10.0.0.9"})  # its row rewritten in flight
        report(hub, NODE_A, {"temperature": 20.5}, T0 + 1)
        await asyncio.sleep(0.2)  # usually sealed by now and waiting for the lock (else the removal drops it)
        assert registry.remove(NODE_A)
        report(hub, NODE_A, {"temperature": 21.0}, T0 + 2)  # registers it again
    await committed(hub)
    report(hub, NODE_A, {"temperature": 21.5}, T0 + 3)
    await committed(hub)
    stored = await store.all(
        "SELECT t.ts FROM telemetry t JOIN nodes n ON n.id = t.node_ref WHERE n.node_id = :n ORDER BY t.ts", n=NODE_A
    )
    assert stored == [(T0 + 2,), (T0 + 3,)]
    assert await store.scalar("SELECT count(*) FROM telemetry") == 2  # nothing left under the removed row
