"""A 10x flood for a bounded time: memory under a documented cap, nothing silently dropped, recovery measured.

The hub (``hub run``, SQLite, a private Mosquitto with persistence) gets ``BASE_RATE`` messages a second,
then ten times that for ``HUB_CHAOS_FLOOD`` seconds (10 in CI; ``docs/reliability.md`` quotes a 60 s run),
then the base rate again.  One message in ``BAD_EVERY`` is malformed.  Afterwards:

* every message the broker accepted is stored exactly once, and every malformed one is counted as a
  rejection: stored + counted rejections = offered;
* the hub's resident memory stayed under ``RSS_CAP_MIB``;
* recovery (the flood's end until the hub has stored everything offered) is measured and printed, with
  the longest event-loop stall (``hub_loop_lag_max_seconds``).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from chaos_harness import Api, MemoryWatch, Publisher, Store, make_token, report, write_config

from hub.testing import HubProcess, free_port, wait_until
from hub.testing.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.slow

FLOOD = float(os.environ.get("HUB_CHAOS_FLOOD", "10"))
NODES = 50
BASE_RATE = 300  # messages a second: the fleet's normal load
BAD_EVERY = 200  # one malformed message in this many
RSS_CAP_MIB = 250
"""The documented cap (docs/reliability.md) on the hub's resident memory during a flood."""


async def test_ten_times_flood(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'flood.db'}"
    http_port = free_port()
    store = Store(db_url)
    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        config = write_config(tmp_path, broker_url=broker.url, db_url=db_url, http_port=http_port)
        api = Api(http_port, make_token(config))
        hub = HubProcess(config, plugins="esp32_node")
        publisher = Publisher(broker.port, NODES, seed=7, inflight=200)
        memory = None
        try:
            hub.wait_running()
            memory = MemoryWatch(hub)
            await asyncio.to_thread(publisher.publish_at, BASE_RATE, 2, bad_every=BAD_EVERY)
            await asyncio.to_thread(publisher.publish_at, 10 * BASE_RATE, FLOOD, bad_every=BAD_EVERY)
            flood_end = time.monotonic()
            await asyncio.to_thread(publisher.publish_at, BASE_RATE, 2, bad_every=BAD_EVERY)
            await asyncio.to_thread(publisher.wait_all_acked, 120)
            accepted = set(publisher.acked)
            assert len(accepted) == publisher.published
            await store.wait_stored(accepted, hub, timeout=120)
            await wait_until(
                lambda: _rejected(api, publisher.bad), timeout=30, message="every malformed message to be counted"
            )
            recovery = time.monotonic() - flood_end
            peak = memory.stop()
            figures = await api.metrics()
            assert hub.stop() == 0, hub.log()
            stored = await store.messages()
        finally:
            if memory is not None:
                memory.stop()
            publisher.close()
            hub.stop()
            await api.close()
            await store.close()

    rejected = figures.get("hub_messages_rejected_total{not_json}", 0.0)
    duplicates = len(stored) - len(set(stored))
    report(
        f"10x flood {FLOOD:g} s",
        offered=publisher.published + publisher.bad,
        stored=len(set(stored)),
        rejected=int(rejected),
        duplicated=duplicates,
        recovery_s=recovery,
        peak_rss_mib=peak,
        max_loop_stall_s=figures["hub_loop_lag_max_seconds"],
        max_loop_busy_s=figures["hub_loop_busy_max_seconds"],
    )
    assert set(stored) == accepted and not duplicates
    assert len(set(stored)) + rejected == publisher.published + publisher.bad, "a message vanished uncounted"
    assert peak < RSS_CAP_MIB, f"the hub grew to {peak:.0f} MiB during the flood"


async def _rejected(api: Api, bad: int) -> bool:
    return (await api.metrics()).get("hub_messages_rejected_total{not_json}", 0.0) >= bad
