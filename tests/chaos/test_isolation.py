"""A slow WebSocket client, a stalled plugin listener and a full disk under SQLite: each isolated and reported.

* **Slow WebSocket client**: one that subscribes to everything and never reads is cut off once its queue is
  full (``websocket_slow_disconnects`` in /metrics and /api/system), while storage keeps committing
  every reading.  (``tests/http/test_http_websocket_slow.py`` shows a reading client meanwhile gets every event.)
* **Stalled plugin listener**: an async listener that never returns loses its oldest events, counted
  (``events.dropped`` in /api/system), and storage commits every reading.  A *synchronous* listener runs
  inline by contract and so holds the loop while it blocks: that cannot be isolated in one process, but it
  is reported (``hub_loop_lag_max_seconds``, and a WARNING naming the stall).
* **Full disk under SQLite**: on a 4 MiB tmpfs the hub's writes fail; it keeps running, acknowledges
  nothing it could not commit, answers HTTP, reports 503 ``degraded`` (``"storage": "failing"``) and
  counts ``hub_write_errors_total``; once space is freed the backlog is stored, each message once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from chaos_harness import Publisher, Store, report

from hub import DATA_HTTP_URL, EVENT_STATE_REPORTED
from hub.core.looplag import WARN_AFTER
from hub.testing import create_user_and_token, unavailable, wait_until
from hub.testing.mosquitto import PrivateMosquitto

READINGS = 20_000
BATCH = 100
MAC = "24:0a:c4:dd:00:01"


async def _hub_with_api(
    hub_factory, config: dict[str, Any] | None = None, *, mqtt: bool = False
) -> tuple[Any, aiohttp.ClientSession, str]:
    """A started hub with storage and http (and mqtt with the installed plugins), and an API session."""
    builtins = ("hub.plugins.storage", "hub.plugins.http", *(("hub.plugins.mqtt",) if mqtt else ()))
    hub = await hub_factory(
        {"http": {"port": 0, "websocket_queue_size": 64}, **(config or {})},
        builtins=builtins,
        start=False,
        entry_points=mqtt,
    )
    user = await create_user_and_token(hub, "chaos", "chaos-password-1")
    await hub.async_start()
    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {user.token}"})
    return hub, session, user.token


async def _report_readings(hub: Any, count: int) -> None:
    """``count`` readings of one node, in batches with a loop turn between, as the ingest path delivers them."""
    registry = hub.registry
    node = registry.get_or_register(MAC)
    registry.ensure_entity(node, "seq")
    registry.ensure_entity(node, "blob", "text_sensor")
    for start in range(0, count, BATCH):
        for seq in range(start, min(start + BATCH, count)):
            registry.report_states(node, {"seq": seq, "blob": "x" * 2000}, hub.clock())
        await asyncio.sleep(0)


async def test_slow_websocket_client_and_stalled_listener_are_isolated(hub_factory, caplog) -> None:
    hub, session, token = await _hub_with_api(hub_factory)
    stored_before = hub.metrics.value("stored_rows")
    release = asyncio.Event()

    async def stalled(event: Any) -> None:  # a plugin's listener that never finishes
        await release.wait()

    hub.bus.listen(EVENT_STATE_REPORTED, stalled)
    url = hub.data[DATA_HTTP_URL]
    try:
        async with session.ws_connect(url + "/api/websocket", autoclose=False, max_msg_size=0) as slow:
            await slow.receive_json()
            await slow.send_json({"type": "auth", "access_token": token})
            assert (await slow.receive_json())["type"] == "auth_ok"
            await slow.send_json({"id": 1, "type": "subscribe_events", "event_type": "*"})
            # From here on the slow client never reads.
            await _report_readings(hub, READINGS)
            await wait_until(
                lambda: hub.metrics.value("stored_rows") - stored_before >= READINGS,
                timeout=60,
                message="storage to commit every reading",
            )
            await wait_until(
                lambda: hub.metrics.value("websocket_slow_disconnects") >= 1, message="the slow client to be cut off"
            )
        async with session.get(url + "/api/system") as response:
            system = await response.json()
        assert system["websocket"]["slow_disconnects"] == 1
        dropped = system["events"]["dropped"]
        assert sum(dropped.values()) == READINGS - 10_001, dropped  # its queue holds 10,000, it holds 1

        # A synchronous listener that blocks holds the loop: not isolated, but measured and logged.
        def blocking(event: Any) -> None:
            time.sleep(WARN_AFTER + 0.1)  # the loop is late by at least this minus one 50 ms sample

        unlisten = hub.bus.listen(EVENT_STATE_REPORTED, blocking)
        with caplog.at_level(logging.WARNING, logger="hub.core.looplag"):
            await _report_readings(hub, 1)
            unlisten()
            await wait_until(lambda: hub.loop_lag.max_lag > WARN_AFTER, message="the stall to be measured")
        assert any("event loop was held" in r.getMessage() for r in caplog.records)
        report(
            "slow WebSocket client + stalled listener",
            readings=READINGS,
            slow_disconnects=system["websocket"]["slow_disconnects"],
            events_dropped=sum(dropped.values()),
            loop_busy_before_blocking_s=system["loop"]["busy_max_seconds"],
            blocking_listener_stall_s=hub.loop_lag.max_lag,
        )
    finally:
        release.set()
        await session.close()


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MiB tmpfs (mounting needs root); skipped where it cannot be made."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        unavailable("mounting a small tmpfs for the disk-full case needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {made.stderr.decode(errors='replace').strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    """Write zeros into ``directory`` until the filesystem is full; the filler file."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError:
            pass
        try:  # the last few bytes too
            while True:
                out.write(b"\0" * 512)
        except OSError:
            pass
    return filler


@pytest.mark.slow
async def test_full_disk_under_sqlite_is_reported_and_loses_nothing(hub_factory, small_disk: Path, tmp_path) -> None:
    db_url = f"sqlite+aiosqlite:///{small_disk / 'hub.db'}"
    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        hub, session, _ = await _hub_with_api(
            hub_factory,
            {
                "mqtt": {"broker": broker.url, "client_id": f"chaos-{uuid.uuid4().hex[:8]}"},
                "storage": {"db_url": db_url, "shutdown_timeout": 1},
            },
            mqtt=True,
        )
        url = hub.data[DATA_HTTP_URL]
        store = Store(db_url)
        publisher = Publisher(broker.port, 10, seed=5)
        try:
            await asyncio.to_thread(publisher.publish, 500)
            await asyncio.to_thread(publisher.wait_all_acked)
            await store.wait_stored(set(publisher.acked), _Alive(), timeout=30)

            filler = await asyncio.to_thread(_fill, small_disk)
            errors_before = hub.metrics.value("write_errors")
            for _ in range(100):  # until a write needs a block the disk no longer has
                await asyncio.to_thread(publisher.publish, 500)
                await asyncio.sleep(0.2)
                if hub.metrics.value("storage_failing"):
                    break
            assert hub.metrics.value("storage_failing") == 1, "writes never failed on the full disk"
            full_at = time.monotonic()
            await asyncio.to_thread(publisher.wait_all_acked)  # the broker holds what the hub does not acknowledge
            async with session.get(url + "/api/health") as response:
                assert response.status == 503
                assert (await response.json()) == {
                    "status": "degraded",
                    "checks": {"database": "ok", "storage": "failing"},
                }
            async with session.get(url + "/api/nodes") as response:
                assert response.status == 200  # the rest keeps working

            filler.unlink()
            accepted = set(publisher.acked)
            await store.wait_stored(accepted, _Alive(), timeout=60)
            recovered = time.monotonic() - full_at
            async with session.get(url + "/api/health") as response:
                assert response.status == 200
            stored = await store.messages()
        finally:
            publisher.close()
            await session.close()
            await store.close()
            await hub.async_stop()
    duplicates = len(stored) - len(set(stored))
    report(
        "SQLite disk full",
        sent=publisher.published,
        stored=len(set(stored)),
        duplicated=duplicates,
        write_errors=int(hub.metrics.value("write_errors") - errors_before),
        recovery_after_freeing_s=recovered,
        max_loop_stall_s=hub.loop_lag.max_lag,
        max_loop_busy_s=hub.loop_lag.max_busy,
    )
    assert not duplicates and accepted <= set(stored)


class _Alive:
    """What :meth:`Store.wait_stored` asks of a hub process, for a hub in this process."""

    def alive(self) -> bool:
        return True

    def log(self) -> str:
        return ""
