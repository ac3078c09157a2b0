"""The fault suite's tools beside :class:`hub.testing.HubProcess` (the real ``hub run`` process): a QoS 1
publisher that records what the broker accepted, and readers for what the hub stored and what its metrics say.

Every message is ``devices/{MAC}/data`` (the JSON contract) carrying a ``message_id`` (so a redelivery is
stored once) and a ``counter`` (the number the test sent), so "sent" and "stored" compare as sets of
``(node, number)``.  The publisher is paho-mqtt (a different client library than the hub's gmqtt) and
records which messages the broker PUBACKed: those are the ones the hub promised to store.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import paho.mqtt.client as paho
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.plugins.storage.rollup_epochs import recover_abandoned
from hub.plugins.storage.rollups import wait_folded
from hub.testing import HubProcess
from hub.testing.process import HUB

MAX_OUTSTANDING = 20_000
"""Messages the publisher lets wait for the broker's PUBACK at most (paho's ids are 16 bits)."""
BAD_PAYLOAD = b"{not json"
"""What the publisher sends as a malformed message: the hub counts it as ``not_json`` and stores nothing."""


def write_config(
    workdir: Path, *, broker_url: str, db_url: str, http_port: int, storage: str = "", extra: str = ""
) -> Path:
    """A config.yaml for a hub under test: its own data folder, broker, database and HTTP port."""
    config = workdir / "config.yaml"
    config.write_text(
        f"hub: {{name: chaos, data_dir: {workdir / 'data'}, log_level: info}}\n"
        f"mqtt: {{broker: '{broker_url}', client_id: chaos-{uuid.uuid4().hex[:8]}}}\n"
        f"storage: {{db_url: '{db_url}'{', ' + storage if storage else ''}}}\n"
        f"http: {{host: 127.0.0.1, port: {http_port}}}\n" + extra
    )
    return config


def make_token(config: Path) -> str:
    """An owner account and a long-lived API token for the hub of ``config`` (as an operator makes them)."""
    env = {**os.environ, "HUB_LOAD_PLUGINS": "esp32_node"}
    subprocess.run(
        [HUB, "user", "create", "-c", str(config), "--username", "chaos", "--password-stdin"],
        input=f"{uuid.uuid4().hex}\n",
        text=True,
        check=True,
        capture_output=True,
        env=env,
    )
    made = subprocess.run(
        [HUB, "token", "create", "-c", str(config), "--name", "chaos"],
        text=True,
        check=True,
        capture_output=True,
        env=env,
    )
    return made.stdout.strip().split()[-1]


class Publisher:
    """paho-mqtt QoS 1 publisher of numbered JSON-contract messages; records which the broker acknowledged."""

    def __init__(self, port: int, nodes: int, *, seed: int = 0, inflight: int = 50) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"chaos-pub-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.published = 0
        self.bad = 0
        self.pending: dict[int, tuple[str, int]] = {}
        self.acked: set[tuple[str, int]] = set()
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.macs = [f"24:0A:C4:{seed % 256:02X}:{i // 256:02X}:{i % 256:02X}" for i in range(nodes)]

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            message = self.pending.pop(mid, None)
            if message is None:
                self._early.add(mid)  # acknowledged before publish() returned its mid to us
            elif message[1] >= 0:
                self.acked.add(message)

    def _send(self, topic: str, body: bytes, key: tuple[str, int]) -> None:
        # paho's message ids are 16 bits: never have more than MAX_OUTSTANDING unacknowledged, or an id would be
        # reused while its first message is still pending (the broker acknowledges at its own pace).
        while self.unacked() >= MAX_OUTSTANDING:
            time.sleep(0.001)
        # Never hold our lock across paho's publish: its network thread holds paho's lock while calling us.
        info = self.client.publish(topic, body, qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                if key[1] >= 0:
                    self.acked.add(key)
            else:
                self.pending[info.mid] = key

    def publish(self, count: int) -> None:
        """Hand the next ``count`` numbered messages to paho, which sends them as its in-flight window allows."""
        for seq in range(self.published, self.published + count):
            mac = self.macs[seq % len(self.macs)]
            body = orjson.dumps({"message_id": f"m{seq}", "counter": seq, "temperature": 20 + seq % 7})
            self._send(f"devices/{mac}/data", body, (mac.lower(), seq))
        self.published += count

    def publish_bad(self) -> None:
        """One malformed message (not JSON): the hub must count its rejection."""
        self._send(f"devices/{self.macs[0]}/data", BAD_PAYLOAD, ("bad", -1))
        self.bad += 1

    def publish_at(
        self, rate: float, seconds: float, *, bad_every: int = 0, stop: Callable[[], bool] = lambda: False
    ) -> None:
        """Publish ``rate`` messages a second for ``seconds`` (paced in 10 ms steps), every ``bad_every``-th bad."""
        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < seconds and not stop():
            due = int(rate * elapsed) - sent
            for _ in range(max(due, 0)):
                if bad_every and (self.published + self.bad) % bad_every == bad_every - 1:
                    self.publish_bad()
                else:
                    self.publish(1)
                sent += 1
            time.sleep(0.01)

    def unacked(self) -> int:
        with self._lock:
            return len(self.pending)

    def wait_all_acked(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.unacked():
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.unacked()} messages never acknowledged by the broker")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Store:
    """Reads what the hub committed to its database."""

    def __init__(self, db_url: str) -> None:
        self.engine = create_async_engine(db_url)
        self.last_error: Exception | None = None
        """Why the latest :meth:`count` answered 0 without asking (shown when a wait times out)."""

    async def count(self) -> int:
        try:
            async with self.engine.connect() as conn:
                return (await conn.execute(text("SELECT count(*) FROM telemetry"))).scalar_one()
        except Exception as err:  # noqa: BLE001 - no table yet (the hub has not migrated) or the database is down
            self.last_error = err
            return 0

    async def messages(self) -> list[tuple[str, int]]:
        """Every stored message as ``(node, counter)``, duplicates included."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT n.node_id, t.states FROM telemetry t JOIN nodes n ON n.id = t.node_ref")
            )
            result = []
            for node_id, states in rows:
                if isinstance(states, str):
                    states = orjson.loads(states)
                if "counter" in states:  # not a node's own hello
                    result.append((node_id, int(states["counter"])))
            return result

    async def wait_stored(self, accepted: set[tuple[str, int]], hub: HubProcess, timeout: float = 60) -> float:
        """Wait until every accepted message is stored; seconds it took."""
        start = time.monotonic()
        while True:
            if await self.count() >= len(accepted) and accepted <= set(await self.messages()):
                return time.monotonic() - start
            if time.monotonic() - start > timeout or not hub.alive():
                raise AssertionError(f"the hub did not store every accepted message in time:\n{hub.log()}")
            await asyncio.sleep(0.1)

    async def rollup_mismatches(self) -> list[tuple[Any, ...]]:
        """PostgreSQL: once every epoch the killed hubs left is recovered and folded, the 1-minute rollup rows
        that differ from the raw rows' aggregates (none: nothing lost to the rollups, nothing counted twice)."""
        await recover_abandoned(self.engine, 0)
        await wait_folded(self.engine)
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(_ROLLUP_MISMATCHES))
            return [tuple(row) for row in rows]

    async def close(self) -> None:
        await self.engine.dispose()


_ROLLUP_MISMATCHES = """
WITH raw AS (
    SELECT t.node_ref, e.key, floor(t.ts / 60) * 60 AS bucket, count(*) AS n,
           sum(CASE jsonb_typeof(e.value) WHEN 'number' THEN e.value::float8 ELSE e.value::boolean::int END) AS total
    FROM telemetry t CROSS JOIN LATERAL jsonb_each(t.states) e
    WHERE jsonb_typeof(e.value) IN ('number', 'boolean')
    GROUP BY 1, 2, 3
)
SELECT coalesce(raw.node_ref, r.node_ref), coalesce(raw.key, r.key), raw.n, r.n, raw.total, r.sum_v
FROM raw FULL JOIN rollup_1m r USING (node_ref, key, bucket)
WHERE raw.n IS DISTINCT FROM r.n OR abs(raw.total - r.sum_v) > 1e-6 * greatest(1, abs(raw.total))
"""


class Api:
    """The hub's HTTP API with a long-lived token: health, metrics."""

    def __init__(self, port: int, token: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with self.session.get(self.base + "/api/health") as response:
            return response.status, await response.json()

    async def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, summed over labels except ``reason`` (``name{reason}`` kept apart)."""
        async with self.session.get(self.base + "/metrics") as response:
            body = await response.text()
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                name = sample.name + (f"{{{sample.labels['reason']}}}" if "reason" in sample.labels else "")
                values[name] = values.get(name, 0.0) + sample.value
        return values

    async def close(self) -> None:
        await self.session.close()


class MemoryWatch:
    """Samples a process's resident memory every 0.2 s in a thread; ``peak`` is the largest seen (MiB)."""

    def __init__(self, hub: HubProcess) -> None:
        self.hub = hub
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and self.hub.alive():
            try:
                self.peak = max(self.peak, self.hub.memory()[0])
            except (OSError, KeyError):
                return
            self._stop.wait(0.2)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


def report(name: str, **figures: Any) -> None:
    """Print a fault's figures (``pytest -s`` shows them; docs/reliability.md quotes them) with the load average."""
    load = os.getloadavg()[0]
    shown = ", ".join(
        f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in figures.items()
    )
    print(f"\n[chaos] {name}: {shown}, load={load:.2f}")
