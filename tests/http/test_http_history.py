"""History endpoints against the real storage plugin, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from http_helpers import Api, assert_error

from hub.core.const import REASON_LWT, REASON_MESSAGE, REASON_TIMEOUT, STATUS_OFFLINE, STATUS_ONLINE

MAC = "aa:bb:cc:dd:ee:07"
STORAGE = ("hub.plugins.storage", "hub.plugins.http")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    return request.getfixturevalue("hub_postgres_url")


@pytest.fixture
async def stored(make_api, db_url: str) -> tuple[Api, float]:
    """A hub with storage and http, holding 3 h of 30 s readings (0, 1, 2, …) and three status changes."""
    api: Api = await make_api(builtins=STORAGE, config={"storage": {"db_url": db_url}})
    registry = api.hub.registry
    start = api.clock() - 3 * 3600
    node = registry.get_or_register(MAC, name="Probe")
    registry.ensure_entity(node, "temperature", unit="°C")
    registry.ensure_entity(node, "label", "text_sensor")
    for index in range(360):
        registry.report_states(node, {"temperature": float(index), "label": "x"}, ts=start + index * 30)
    registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE, ts=start)
    registry.set_status(node, STATUS_OFFLINE, REASON_LWT, ts=start + 3600)
    registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE, ts=start + 7200)
    await asyncio.wait_for(api.hub.durability.wait_committed(), 10)
    await api.hub.services.call("storage", "fold", {})  # PostgreSQL: longer windows are read from the rollups
    return api, start


async def test_history_is_downsampled_into_buckets(stored: tuple[Api, float]) -> None:
    api, start = stored
    end = start + 3 * 3600
    status, body = await api.call(
        "GET",
        f"/api/nodes/{MAC}/history/temperature",
        params={"start": start, "end": end, "points": 6, "resolution": "raw"},
    )
    assert status == 200, body
    assert body["node_id"] == MAC and body["key"] == "temperature" and body["bucket_seconds"] == 1800
    buckets = body["buckets"]
    assert [b["count"] for b in buckets] == [60] * 6
    assert [(b["min"], b["max"]) for b in buckets] == [(60.0 * i, 60.0 * i + 59) for i in range(6)]
    assert buckets[0]["avg"] == pytest.approx(29.5)
    assert buckets[1]["t"] == pytest.approx(start + 1800)


async def test_history_defaults_to_the_last_day_and_accepts_iso_times(stored: tuple[Api, float]) -> None:
    api, _start = stored
    status, body = await api.call("GET", f"/api/nodes/{MAC.upper()}/history/temperature")
    assert status == 200 and sum(b["count"] for b in body["buckets"]) == 360
    assert body["end"] - body["start"] == 86400 and len(body["buckets"]) <= 500
    assert body["resolution"] == ("1m" if api.hub.config["storage"]["db_url"].startswith("postgresql") else "raw")
    status, body = await api.call(
        "GET",
        f"/api/nodes/{MAC}/history/temperature",
        params={"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00+00:00", "points": "10"},
    )
    assert status == 200 and body["buckets"] == [] and body["start"] == 1577836800.0


async def test_history_validation_and_not_found(stored: tuple[Api, float]) -> None:
    api, start = stored
    path = f"/api/nodes/{MAC}/history/temperature"
    for params in [
        {"points": "0"},
        {"points": "5001"},
        {"points": "ten"},
        {"points": "1.5"},
        {"start": "yesterday"},
        {"start": "nan"},
        {"start": "1e400"},
        {"start": str(start + 10), "end": str(start)},
        {"start": str(start), "end": str(start)},
        {"step": "5"},
        {"resolution": "5m"},
    ]:
        status, body = await api.call("GET", path, params=params)
        assert_error(status, body, 400, "invalid_request")
    status, body = await api.call("GET", f"/api/nodes/{MAC}/history/pressure")
    assert_error(status, body, 404, "entity_not_found")
    status, body = await api.call("GET", "/api/nodes/ff:ff:ff:ff:ff:ff/history/temperature")
    assert_error(status, body, 404, "node_not_found")


async def test_status_history_newest_first(stored: tuple[Api, float]) -> None:
    api, start = stored
    status, body = await api.call("GET", f"/api/nodes/{MAC}/status_history")
    assert status == 200, body
    assert body["node_id"] == MAC
    assert [(h["new"], h["reason"]) for h in body["history"]] == [
        (STATUS_ONLINE, REASON_MESSAGE),
        (STATUS_OFFLINE, REASON_LWT),
        (STATUS_ONLINE, REASON_MESSAGE),
    ]
    status, body = await api.call("GET", f"/api/nodes/{MAC}/status_history", params={"limit": 1, "end": start + 7200})
    assert [h["new"] for h in body["history"]] == [STATUS_OFFLINE]
    status, body = await api.call("GET", f"/api/nodes/{MAC}/status_history", params={"limit": "0"})
    assert_error(status, body, 400, "invalid_request")
    assert REASON_TIMEOUT  # the reasons are the core's constants


async def test_history_without_storage_is_503(api: Api) -> None:
    registry = api.hub.registry
    node = registry.get_or_register(MAC)
    registry.ensure_entity(node, "temperature")
    status, body = await api.call("GET", f"/api/nodes/{MAC}/history/temperature")
    assert_error(status, body, 503, "storage_unavailable")
    status, body = await api.call("GET", f"/api/nodes/{MAC}/status_history")
    assert_error(status, body, 503, "storage_unavailable")
