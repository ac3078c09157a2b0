"""Crash test: kill -9 the hub mid-stream, restart it, and every message the broker accepted is stored exactly once.

The hub runs as a real ``hub run`` process against a private Mosquitto tuned like
``deploy/mosquitto.conf`` (so the broker keeps the hub's queue while it is dead),
with a real database.  A paho-mqtt publisher (a different client library than the
hub's) sends numbered telemetry at QoS 1 and records which messages the broker
PUBACKed.  Halfway through, the hub is SIGKILLed: whatever it had received but
not committed was never acknowledged, so the broker redelivers it; whatever it
had committed but not yet acknowledged is redelivered too and must be dropped
by the dedupe key.  After a restart the table must hold each accepted message
exactly once.
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
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.testing.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.slow

NODES = 5
MESSAGES = 4000
KILL_AFTER = 1500
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

    def wait_running(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any("running with plugins" in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("hub did not start:\n" + "\n".join(self.lines[-30:]))

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Publisher:
    """paho-mqtt QoS 1 publisher that records which messages the broker acknowledged."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"crash-pub-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(50)
        self.client.max_queued_messages_set(0)
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

    def publish(self, seq: int) -> None:
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

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

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
            killed = False
            for seq in range(MESSAGES):
                publisher.publish(seq)
                if not killed and publisher.acked_count() >= KILL_AFTER:
                    hub.kill()  # mid-stream, with batches open and PUBACKs outstanding
                    killed = True
                if seq % 100 == 0:
                    time.sleep(0.005)  # a fleet, not a firehose: gives the hub time to be mid-batch
            assert killed, "the hub was never killed: the publisher outran the test"
            publisher.wait_all_acked()
            accepted = set(publisher.acked)
            assert len(accepted) == MESSAGES

            before_restart = len(await stored_messages(db_url))
            assert before_restart < len(accepted), "nothing was left for the restarted hub: the kill came too late"

            hub = HubProcess(config)
            hub.wait_running()
            deadline = time.monotonic() + 60
            stored: list[tuple[str, int]] = []
            while time.monotonic() < deadline:
                stored = await stored_messages(db_url)
                if len(set(stored)) >= len(accepted):
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # anything still redelivered must not add a row
            stored = await stored_messages(db_url)
        finally:
            if publisher is not None:
                publisher.close()
            hub.stop()

    assert len(stored) == len(set(stored)), "a message was stored twice"
    missing = accepted - set(stored)
    assert not missing, f"{len(missing)} acknowledged messages were lost, e.g. {sorted(missing)[:5]}"
    assert set(stored) == accepted
