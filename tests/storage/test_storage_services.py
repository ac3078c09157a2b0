"""The storage services: history downsampling, status history, purge (retention)."""

from __future__ import annotations

import pytest
from storage_helpers import NODE_A, NODE_B, T0, Store, committed, report

from hub.core.const import REASON_LWT, REASON_MESSAGE, REASON_TIMEOUT, STATUS_OFFLINE, STATUS_ONLINE
from hub.core.errors import ServiceValidationError
from hub.testing import FakeClock

DAY = 86400.0

RAW = {"resolution": "raw"}
"""These check the downsampling of raw rows, exact to the bucket edge (rollups: test_storage_rollups.py)."""


async def test_history_is_downsampled_per_bucket(storage_hub):
    hub = await storage_hub(batch_size=10_000)
    # 100 s window, 4 buckets of 25 s; a reading every 5 s (value = seconds into the window).
    for second in range(0, 100, 5):
        report(hub, NODE_A, {"temperature": float(second), "mode": "eco"}, T0 + second)
    report(hub, NODE_A, {"temperature": -50.0}, T0 - 1)  # before the window
    report(hub, NODE_A, {"temperature": 500.0}, T0 + 100)  # end is exclusive
    report(hub, NODE_B, {"temperature": 999.0}, T0 + 10)  # another node
    await committed(hub)
    result = await hub.services.call(
        "storage", "history", RAW | {"node_id": NODE_A, "key": "temperature", "start": T0, "end": T0 + 100, "points": 4}
    )
    assert result["node_id"] == NODE_A and result["key"] == "temperature"
    assert (result["start"], result["end"], result["bucket_seconds"]) == (T0, T0 + 100, 25.0)
    assert result["buckets"] == [
        {"t": T0, "min": 0.0, "avg": 10.0, "max": 20.0, "count": 5},
        {"t": T0 + 25, "min": 25.0, "avg": 35.0, "max": 45.0, "count": 5},
        {"t": T0 + 50, "min": 50.0, "avg": 60.0, "max": 70.0, "count": 5},
        {"t": T0 + 75, "min": 75.0, "avg": 85.0, "max": 95.0, "count": 5},
    ]


async def test_history_returns_at_most_points_buckets_and_skips_non_numbers(storage_hub):
    hub = await storage_hub(batch_size=10_000)
    for i in range(1000):
        states = {"temperature": i % 7 + 0.5, "door": i % 2 == 0, "label": "x"}
        if i % 10 == 0:
            states["temperature"] = "unavailable"  # a string reading is not charted
        report(hub, NODE_A, states, T0 + i * 0.999)
    await committed(hub)
    for points in (1, 3, 7, 500):
        result = await hub.services.call(
            "storage",
            "history",
            RAW | {"node_id": NODE_A, "key": "temperature", "start": T0, "end": T0 + 999, "points": points},
        )
        assert 1 <= len(result["buckets"]) <= points
        assert sum(bucket["count"] for bucket in result["buckets"]) == 900
        assert all(bucket["min"] <= bucket["avg"] <= bucket["max"] for bucket in result["buckets"])
    doors = await hub.services.call(
        "storage", "history", RAW | {"node_id": NODE_A, "key": "door", "start": T0, "end": T0 + 999, "points": 1}
    )
    assert doors["buckets"] == [{"t": T0, "min": 0.0, "avg": 0.5, "max": 1.0, "count": 1000}]
    labels = await hub.services.call(
        "storage", "history", {"node_id": NODE_A, "key": "label", "start": T0, "end": T0 + 999}
    )
    assert labels["buckets"] == []
    unknown = await hub.services.call(
        "storage", "history", {"node_id": "nobody", "key": "temperature", "start": T0, "end": T0 + 999}
    )
    assert unknown["buckets"] == [] and unknown["bucket_seconds"] == 999 / 500


@pytest.mark.parametrize(
    "data",
    [
        {"node_id": NODE_A, "key": "t", "start": T0, "end": T0, "points": 10},
        {"node_id": NODE_A, "key": "t", "start": T0, "end": T0 + 1, "points": 0},
        {"node_id": NODE_A, "key": "t", "start": T0, "end": T0 + 1, "points": 5001},
        {"node_id": NODE_A, "key": 't"', "start": T0, "end": T0 + 1},
        {"node_id": NODE_A, "key": "t", "start": "soon", "end": T0 + 1},
        {"node_id": NODE_A, "key": "t", "start": float("nan"), "end": T0 + 1},
        {"node_id": NODE_A, "start": T0, "end": T0 + 1},
    ],
)
async def test_history_rejects_bad_requests(storage_hub, data):
    hub = await storage_hub()
    with pytest.raises(ServiceValidationError):
        await hub.services.call("storage", "history", data)


async def test_status_history_is_recorded_newest_first(storage_hub, store: Store):
    hub = await storage_hub()
    registry = hub.registry
    node = registry.get_or_register(NODE_A)
    registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE, ts=T0)
    registry.set_status(node, STATUS_OFFLINE, REASON_LWT, ts=T0 + 10)
    registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE, ts=T0 + 20)
    registry.set_status(node, STATUS_OFFLINE, REASON_TIMEOUT, ts=T0 + 30)
    await committed(hub)
    changes = await hub.services.call("storage", "status_history", {"node_id": NODE_A})
    assert changes == [
        {"ts": T0 + 30, "old": "online", "new": "offline", "reason": "timeout"},
        {"ts": T0 + 20, "old": "offline", "new": "online", "reason": "message"},
        {"ts": T0 + 10, "old": "online", "new": "offline", "reason": "lwt"},
        {"ts": T0, "old": "unknown", "new": "online", "reason": "message"},
    ]
    window = await hub.services.call(
        "storage", "status_history", {"node_id": NODE_A, "start": T0 + 10, "end": T0 + 30, "limit": 1}
    )
    assert window == [{"ts": T0 + 20, "old": "offline", "new": "online", "reason": "message"}]
    assert await store.all("SELECT status, status_reason, status_since FROM nodes") == [("offline", "timeout", T0 + 30)]


async def test_purge_deletes_only_rows_older_than_keep_days(storage_hub, store: Store, hub_clock: FakeClock):
    hub = await storage_hub(keep_days=30, purge_chunk=100, batch_size=10_000)
    hub_clock.now = T0 + 40 * DAY
    for i in range(250):  # 250 old rows: three chunks of 100
        report(hub, NODE_A, {"temperature": 1.0}, T0 + i)
    for i in range(20):
        report(hub, NODE_B, {"temperature": 1.0}, T0 + i)
    for i in range(30):  # recent
        report(hub, NODE_A, {"temperature": 2.0}, T0 + 39 * DAY + i)
    registry = hub.registry
    registry.set_status(registry.get(NODE_A), STATUS_ONLINE, REASON_MESSAGE, ts=T0)
    registry.set_status(registry.get(NODE_A), STATUS_OFFLINE, REASON_LWT, ts=T0 + 39 * DAY)
    await committed(hub)

    result = await hub.services.call("storage", "purge", {})
    if store.dialect == "postgresql":
        # The old rows went with their whole partition (made at start, T0's day): not counted row by row.
        assert result.pop("partitions_dropped") >= 1
        assert result == {"deleted": 1, "telemetry": 0, "status_history": 1}
    else:
        assert result == {"deleted": 271, "telemetry": 270, "status_history": 1}
    assert await store.scalar("SELECT count(*) FROM telemetry") == 30
    assert await store.scalar("SELECT min(ts) FROM telemetry") == T0 + 39 * DAY
    assert await store.scalar("SELECT count(*) FROM status_history") == 1
    assert hub.metrics.value("purged_rows") == result["deleted"]
    assert (await hub.services.call("storage", "purge", {}))["deleted"] == 0
    assert (await hub.services.call("storage", "purge", {"keep_days": 0.5}))["telemetry"] == 30


async def test_keep_days_zero_keeps_everything(storage_hub, store: Store, hub_clock: FakeClock):
    hub = await storage_hub(keep_days=0)
    report(hub, NODE_A, {"temperature": 1.0}, T0)
    await committed(hub)
    hub_clock.now = T0 + 1000 * DAY
    result = await hub.services.call("storage", "purge", {})
    assert result == {"deleted": 0, "telemetry": 0, "status_history": 0}
    assert await store.scalar("SELECT count(*) FROM telemetry") == 1


async def test_sqlite_answers_history_from_raw_rows_whatever_the_resolution(storage_hub, store: Store):
    hub = await storage_hub()
    for second in range(0, 7200, 30):
        report(hub, NODE_A, {"temperature": 1.0}, T0 + second)
    await committed(hub)
    folded = await hub.services.call("storage", "fold", {})
    query = {"node_id": NODE_A, "key": "temperature", "start": T0, "end": T0 + 7200, "points": 2}
    for resolution in ("auto", "raw", "1m", "1h"):
        result = await hub.services.call("storage", "history", {**query, "resolution": resolution})
        expected = "raw" if store.dialect == "sqlite" else {"auto": "1h"}.get(resolution, resolution)
        assert result["resolution"] == expected
        assert sum(bucket["count"] for bucket in result["buckets"]) == 240
    if store.dialect == "sqlite":
        assert folded == {"deltas": 0, "minutes": 0, "hours": 0}
        assert await store.all("SELECT name FROM sqlite_master WHERE name LIKE 'rollup%'") == []
    with pytest.raises(ServiceValidationError):
        await hub.services.call("storage", "history", {**query, "resolution": "5m"})
