"""kill -9 of the hub at seeded random points under QoS 1 load: every PUBACKed message is stored exactly once.

The hub runs as a real ``hub run`` process against a private Mosquitto tuned like
``deploy/mosquitto.conf`` (so the broker keeps the hub's queue while it is dead), with a
real database.  A paho-mqtt publisher sends numbered ``devices/{MAC}/data`` messages with a
``message_id`` at QoS 1 and records which the broker PUBACKed.  The hub is killed
``KILLS`` times, each at a point drawn from a seeded generator: after a random number of
committed rows, with a random number of messages just handed to the broker, and right
after the test saw the database's count grow — that is, between a commit and the PUBACKs
that follow it, the window the dedupe key exists for.  Whatever the hub had received but
not committed was never acknowledged, so the broker redelivers it; whatever it had
committed but not acknowledged is redelivered too and must be dropped as a duplicate.
After the last restart the table must hold each accepted message exactly once, and on PostgreSQL,
once the rollup epochs the killed hubs left are recovered, the rollups must equal the raw rows.

Nothing here races the clock: the publisher is paced by the hub's own progress (at most
``LAG`` messages ahead of what the database holds), and ``TAIL`` messages are published
while the hub is dead, so every restarted hub has work left however fast the machine is.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from chaos_harness import Publisher, Store, report, write_config

from hub.testing import HubProcess, free_port
from hub.testing.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.slow

SEED = 10
KILLS = 3
NODES = 5
CHUNK = 250  # messages published at a time
LAG = 500  # the publisher runs at most this many messages ahead of the committed rows
TAIL = 500  # messages published while the hub is dead: the restarted hub's work
PROGRESS_TIMEOUT = 30.0  # s the hub may take to commit the next chunk (a hub that stores nothing fails)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    return request.getfixturevalue("hub_postgres_url")


async def wait_committed(store: Store, at_least: int, hub: HubProcess) -> int:
    """Poll the database until it holds ``at_least`` rows; the number it holds then."""
    deadline = time.monotonic() + PROGRESS_TIMEOUT
    while (committed := await store.count()) < at_least:
        if time.monotonic() > deadline or not hub.alive():
            raise AssertionError(f"the hub committed {committed} rows, not {at_least}, in time:\n{hub.log()}")
        await asyncio.sleep(0.005)
    return committed


async def test_kill_minus_nine_at_random_points_loses_and_duplicates_nothing(tmp_path: Path, db_url: str) -> None:
    rng = random.Random(SEED)
    store = Store(db_url)
    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        config = write_config(tmp_path, broker_url=broker.url, db_url=db_url, http_port=free_port())
        publisher = Publisher(broker.port, NODES, seed=rng.randrange(256))
        hub = HubProcess(config, plugins="esp32_node")
        kill_points = []
        try:
            for _ in range(KILLS):
                hub.wait_running()
                target = await store.count() + rng.randrange(300, 1200)
                committed = await store.count()
                while committed < target:
                    publisher.publish(CHUNK)
                    committed = await wait_committed(store, publisher.published - LAG, hub)
                publisher.publish(rng.randrange(0, CHUNK))  # some received, batched or on their way
                # Between commit and PUBACK: kill the moment the database's count grows.
                seen = await store.count()
                await wait_committed(store, seen + 1, hub)
                hub.kill()
                kill_points.append(seen)
                publisher.publish(TAIL)
                hub.stop()
                hub = HubProcess(config, plugins="esp32_node")
            publisher.wait_all_acked()
            accepted = set(publisher.acked)
            assert len(accepted) == publisher.published
            hub.wait_running()
            recovery = await store.wait_stored(accepted, hub)
            # Redeliveries come before the queued messages, so with every accepted message stored they have all
            # arrived; the graceful stop commits whatever the hub still holds.
            assert hub.stop() == 0, hub.log()
            stored = await store.messages()
            rollups_off = await store.rollup_mismatches() if db_url.startswith("postgresql") else []
        finally:
            publisher.close()
            hub.stop()
            await store.close()

    duplicates = len(stored) - len(set(stored))
    missing = accepted - set(stored)
    report(
        f"kill -9 x{KILLS} ({db_url.split(':')[0]})",
        sent=publisher.published,
        acked=len(accepted),
        stored=len(set(stored)),
        duplicated=duplicates,
        lost=len(missing),
        kill_points=kill_points,
        recovery_s=recovery,
    )
    assert not duplicates, "a message was stored twice"
    assert not missing, f"{len(missing)} acknowledged messages were lost, e.g. {sorted(missing)[:5]}"
    assert set(stored) == accepted
    assert not rollups_off, (
        f"rollups differ from the raw rows (node, key, raw n, rolled n, raw sum, rolled sum): {rollups_off[:5]}"
    )
