"""WebSocket latency benchmark: MQTT publish → hub (mqtt, esp32_node, storage, presence, http) → WebSocket event.

    python benchmarks/ws_latency.py [--broker URL] [--db URL] [--rate 5000] [--seconds 10] [--nodes 100]

1. Without ``--broker`` it starts a private Mosquitto tuned like ``deploy/mosquitto.conf`` on a free port.
2. The hub runs in this process with the real ingest path and the HTTP API on a free loopback port.
3. A WebSocket client (its own process) subscribes to ``state_reported``; a paced QoS 1 publisher (its
   own process) sends ``--rate`` messages a second for ``--seconds``, each carrying its publish time as
   the node's ``timestamp``.  Latency = the client's receive time − that timestamp (same machine, same
   clock; the timestamp has millisecond resolution).
4. The history query: one node gets 30 days of 30 s readings (86,400 rows) through the registry and
   storage, then ``GET /api/nodes/{id}/history/temperature`` over the 30 days (500 buckets) is timed
   through the real HTTP API.

Prints one JSON line: sent, received, p50_ms, p99_ms, max_ms; history_query_ms_p50/max (20 queries over
HTTP) and history_service_ms_p50 (the storage service called directly, for comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson

from hub import DATA_HTTP_URL, EVENT_STATE_REPORTED, Hub
from hub.core.hub import freeze_startup_heap
from hub.testing import PrivateMosquitto, create_user_and_token, make_hub

HERE = Path(__file__).resolve().parent
HISTORY_NODE = "02:00:00:00:30:30"
HISTORY_DAYS = 30
HISTORY_STEP = 30.0
WINDOW = 1000


# --- the publisher process ---------------------------------------------------------------------
async def paced_publish(broker: str, nodes: int, rate: int, seconds: float) -> dict:
    """QoS 1 telemetry at ``rate`` msg/s (small bursts every 2 ms), at most WINDOW unacknowledged at once."""
    from gmqtt import Client
    from gmqtt.mqtt.constants import MQTTv50
    from loadgen import _WindowStorage, node_macs, payload

    parts = urlsplit(broker)
    storage = _WindowStorage()
    client = Client(f"wslat-{uuid.uuid4().hex[:8]}", persistent_storage=storage)
    await client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, version=MQTTv50)
    macs = node_macs(nodes)
    started = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(elapsed * rate) + 1
        while sent < due and len(storage._messages) < WINDOW:
            mac = macs[sent % nodes]
            client.publish(f"devices/{mac}/data", payload(mac, sent, time.time()), qos=1)
            sent += 1
        await asyncio.sleep(0.002)
    while storage._messages:
        storage.freed.clear()
        await storage.freed.wait()
    await client.disconnect()
    return {"sent": sent, "seconds": round(time.perf_counter() - started, 3)}


# --- the WebSocket client process -----------------------------------------------------------------
async def ws_client(url: str, token: str, expected: int, idle: float) -> dict:
    """Subscribe to state_reported; record receive time − node timestamp for each event."""
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "/api/websocket") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": token})
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": EVENT_STATE_REPORTED})
        assert (await ws.receive_json())["success"]
        print("ready", flush=True)
        while len(latencies) < expected:
            try:
                msg = await asyncio.wait_for(ws.receive(), idle)
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            event = orjson.loads(msg.data)["event"]
            latencies.append(now - event["data"]["ts"])
    latencies.sort()
    if not latencies:
        return {"received": 0}
    return {
        "received": len(latencies),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "max_ms": round(1000 * latencies[-1], 2),
    }


# --- the hub process -------------------------------------------------------------------------------
def build_hub(broker: str, db_url: str | None, data_dir: Path) -> Hub:
    from hub_esp32_node import plugin as esp32_node

    builtins = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence", "hub.plugins.http")
    raw = {
        "hub": {"name": "bench", "data_dir": str(data_dir), "log_level": "warning"},
        "mqtt": {"broker": broker, "client_id": f"bench-hub-{uuid.uuid4().hex[:8]}"},
        "http": {"port": 0},
        **({"storage": {"db_url": db_url}} if db_url else {}),
    }
    return make_hub(raw, builtins=builtins, plugins=[(esp32_node, "esp32_node")])


async def history_query(hub: Hub, url: str, token: str) -> dict:
    """Fill 30 days of 30 s readings for one node, then time the 30-day downsampled query over HTTP."""
    registry = hub.registry
    node = registry.get_or_register(HISTORY_NODE, name="history probe")
    registry.ensure_entity(node, "temperature", unit="°C")
    end = time.time()
    start = end - HISTORY_DAYS * 86400
    rows = int(HISTORY_DAYS * 86400 / HISTORY_STEP)
    for index in range(rows):
        registry.report_states(node, {"temperature": 20 + (index % 200) / 10}, ts=start + index * HISTORY_STEP)
        if index % 1000 == 0:
            await hub.durability.wait_committed()
    await hub.durability.wait_committed()
    timings = []
    params = {"start": str(start), "end": str(end), "points": "500"}
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        for _ in range(21):
            began = time.perf_counter()
            async with session.get(
                f"{url}/api/nodes/{HISTORY_NODE}/history/temperature", params=params, headers=headers
            ) as response:
                body = await response.json()
            timings.append(time.perf_counter() - began)
    counted = sum(bucket["count"] for bucket in body["buckets"])
    timings = sorted(timings[1:])  # the first query warms caches
    direct = []  # the storage service alone, to tell its share from the API's
    for _ in range(20):
        began = time.perf_counter()
        await hub.services.call(
            "storage",
            "history",
            {"node_id": HISTORY_NODE, "key": "temperature", "start": start, "end": end, "points": 500},
        )
        direct.append(time.perf_counter() - began)
    return {
        "history_rows": rows,
        "history_rows_counted": counted,
        "history_buckets": len(body["buckets"]),
        "history_query_ms_p50": round(1000 * statistics.median(timings), 1),
        "history_query_ms_max": round(1000 * timings[-1], 1),
        "history_service_ms_p50": round(1000 * statistics.median(direct), 1),
    }


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen[str]) -> dict:
    out, _ = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"{process.args} failed with exit code {process.returncode}")
    return json.loads(out.strip().splitlines()[-1])


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="hub-wslat-") as tmp:
        workdir = Path(tmp)
        broker = PrivateMosquitto(workdir / "mosquitto") if args.broker is None else None
        if broker is not None:
            broker.start()
        broker_url = args.broker or broker.url  # type: ignore[union-attr]
        hub = build_hub(broker_url, args.db, workdir / "hub")
        token = (await create_user_and_token(hub, "bench", uuid.uuid4().hex)).token
        await hub.async_start()
        freeze_startup_heap()  # as `hub run` does
        try:
            url = hub.data[DATA_HTTP_URL]
            expected = int(args.rate * args.seconds)
            client = _spawn("--role", "client", "--url", url, "--token", token, "--expect", str(expected))
            assert client.stdout is not None
            ready = await asyncio.to_thread(client.stdout.readline)
            assert ready.strip() == "ready", ready
            publisher = _spawn(
                "--role", "publisher", "--broker", broker_url, "--rate", str(args.rate),
                "--seconds", str(args.seconds), "--nodes", str(args.nodes),
            )  # fmt: skip
            published, received = await asyncio.gather(
                asyncio.to_thread(_result, publisher), asyncio.to_thread(_result, client)
            )
            history = await history_query(hub, url, token)
        finally:
            await hub.async_stop()
            if broker is not None:
                broker.stop()
    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "nodes": args.nodes,
        "db": urlsplit(args.db).scheme if args.db else "sqlite",
        "sent": published["sent"],
        "publish_seconds": published["seconds"],
        **received,
        **history,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="WebSocket latency benchmark (see the module docstring).")
    parser.add_argument("--role", choices=["hub", "publisher", "client"], default="hub", help=argparse.SUPPRESS)
    parser.add_argument("--broker", help="MQTT broker URL (default: start a private Mosquitto)")
    parser.add_argument("--db", help="SQLAlchemy URL (default: SQLite in a temporary directory)")
    parser.add_argument("--rate", type=int, default=5000, help="messages per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "publisher":
        result = asyncio.run(paced_publish(args.broker, args.nodes, args.rate, args.seconds))
    elif args.role == "client":
        result = asyncio.run(ws_client(args.url, args.token, args.expect, idle=10.0))
    else:
        result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
