"""Crash test: kill -9 the hub mid-stream, restart it, and every message the broker accepted is stored exactly once.

The hub runs as a real ``hub run`` process against a private Mosquitto tuned like
``deploy/mosquitto.conf`` (so the broker keeps the hub's queue while it is dead),
with a real database.  A paho-mqtt publisher (a different client library than the
hub's) sends numbered telemetry at QoS 1 and records which messages the broker
PUBACKed.  Whatever the hub had received but not committed when it was killed was
never acknowledged, so the broker redelivers it; whatever it had committed but not
yet acknowledged is redelivered too and must be dropped by the dedupe key.  After a
restart the table must hold each accepted message exactly once.

Nothing here is a race with the clock: the publisher is paced by the hub's own
progress (it runs at most ``LAG`` messages ahead of what the database holds), the
kill comes once the database holds ``COMMITTED_BEFORE_KILL`` rows, right after one
more chunk went out, and ``TAIL`` messages are published while the hub is dead, so
the restarted hub always has work left, however fast or slow the machine is.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.testing.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.slow

NODES = 5
CHUNK = 250  # messages published at a time
LAG = 500  # the publisher runs at most this many messages ahead of the committed rows
COMMITTED_BEFORE_KILL = 1000  # rows the hub must have committed before it is killed
TAIL = 1000  # messages published while the hub is dead: the restarted hub's work
PROGRESS_TIMEOUT = 30.0  # s the hub may take to commit the next chunk (a hub that stores nothing fails)
HUB = [str(Path(sys.executable).parent / "hub")]


class HubProcess:
    """``hub run`` in a subprocess whose log is collected by a thread."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "HUB_LOAD_PLUGINS": "esp32_node"}
        self.process = subprocess.Popen(
            [*HUB, "run", "-c", str(config)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip())

    def log(self) -> str:
        return "\n".join(self.lines[-30:])

    def wait_running(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any("running with plugins" in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("hub did not start:\n" + self.log())

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait: a graceful stop commits and acknowledges everything the hub has received."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)
        return self.process.returncode


class Publisher:
    """paho-mqtt QoS 1 publisher that records which messages the broker acknowledged."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"crash-pub-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(50)
        self.client.max_queued_messages_set(0)
        self.published = 0
        self.pending: dict[int, tuple[str, int]] = {}
        self.acked: set[tuple[str, int]] = set()
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.macs = [f"24:0A:C4:{uuid.uuid4().hex[:2]}:{uuid.uuid4().hex[:2]}:{i:02X}".upper() for i in range(NODES)]

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            message = self.pending.pop(mid, None)
            if message is None:
                self._early.add(mid)  # acknowledged before publish() returned its mid to us
            else:
                self.acked.add(message)

    def publish(self, count: int) -> None:
        """Hand the next ``count`` numbered messages to paho, which sends them as its in-flight window allows."""
        for seq in range(self.published, self.published + count):
            mac = self.macs[seq % NODES]
            body = orjson.dumps({"seq": seq, "counter": seq, "temperature": 20 + seq % 7, "timestamp": time.time()})
            # Never hold our lock across paho's publish: its network thread holds paho's lock while calling us.
            info = self.client.publish(f"devices/{mac}/data", body, qos=1)
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self.acked.add((mac.lower(), seq))
                else:
                    self.pending[info.mid] = (mac.lower(), seq)
        self.published += count

    def wait_all_acked(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self.pending:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{len(self.pending)} messages never acknowledged by the broker")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@asynccontextmanager
async def committed_rows(db_url: str) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """A function returning how many telemetry rows the hub has committed (read from its database)."""
    engine = create_async_engine(db_url)

    async def count() -> int:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM telemetry"))).scalar_one()

    try:
        yield count
    finally:
        await engine.dispose()


async def wait_committed(count: Callable[[], Awaitable[int]], at_least: int, hub: HubProcess) -> int:
    """Poll the database until it holds ``at_least`` rows; the number it holds then."""
    deadline = time.monotonic() + PROGRESS_TIMEOUT
    while (committed := await count()) < at_least:
        if time.monotonic() > deadline or hub.process.poll() is not None:
            raise AssertionError(f"the hub committed {committed} rows, not {at_least}, in time:\n{hub.log()}")
        await asyncio.sleep(0.01)
    return committed


async def stored_messages(db_url: str) -> list[tuple[str, int]]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT n.node_id, t.states FROM telemetry t JOIN nodes n ON n.id = t.node_ref")
            )
            result = []
            for node_id, states in rows:
                if isinstance(states, str):
                    states = orjson.loads(states)
                result.append((node_id, int(states["counter"])))
            return result
    finally:
        await engine.dispose()


async def wait_stored(db_url: str, accepted: set[tuple[str, int]], hub: HubProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not accepted <= set(await stored_messages(db_url)):
        if time.monotonic() > deadline or hub.process.poll() is not None:
            raise AssertionError(f"the restarted hub did not store every accepted message:\n{hub.log()}")
        await asyncio.sleep(0.1)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    return request.getfixturevalue("hub_postgres_url")


async def test_kill_minus_nine_mid_stream_loses_and_duplicates_nothing(tmp_path: Path, db_url: str) -> None:
    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"hub: {{name: crash, data_dir: {tmp_path / 'data'}, log_level: info}}\n"
            f"mqtt: {{broker: '{broker.url}', client_id: crash-{uuid.uuid4().hex[:8]}}}\n"
            f"storage: {{db_url: '{db_url}'}}\n"
            "http: {port: 0}\n"
        )
        hub = HubProcess(config)
        publisher = None
        try:
            hub.wait_running()
            publisher = Publisher(broker.port)
            async with committed_rows(db_url) as count:
                committed = 0
                while committed < COMMITTED_BEFORE_KILL:
                    publisher.publish(CHUNK)
                    committed = await wait_committed(count, publisher.published - LAG, hub)
                publisher.publish(CHUNK)
                hub.kill()  # with up to LAG + CHUNK messages received, batched or on their way, none acknowledged
                publisher.publish(TAIL)
                publisher.wait_all_acked()
                accepted = set(publisher.acked)
                assert len(accepted) == publisher.published

                before_restart = await count()
                assert before_restart < len(accepted), "nothing was left for the restarted hub"

            hub = HubProcess(config)
            hub.wait_running()
            await wait_stored(db_url, accepted, hub)
            # Redeliveries come before the queued messages, so with every accepted message stored they have all
            # arrived; the graceful stop commits whatever the hub still holds.
            assert hub.stop() == 0, hub.log()
            stored = await stored_messages(db_url)
        finally:
            if publisher is not None:
                publisher.close()
            hub.stop()

    assert len(stored) == len(set(stored)), "a message was stored twice"
    missing = accepted - set(stored)
    assert not missing, f"{len(missing)} acknowledged messages were lost, e.g. {sorted(missing)[:5]}"
    assert set(stored) == accepted
