"""Ingest through the embedded broker, with and without a flood of bad CONNECTs (issue 10, item 6).

    python benchmarks/broker_logins.py --messages 3000 --flood-rate 20

A hub in this process (embedded broker with ``broker: users: {esp32: …}``, storage on SQLite
in a temporary folder, mqtt, esp32_node).  A publisher in its own process sends ``--messages``
QoS 1 telemetry messages as ``esp32`` (MQTT 3.1.1, 100 in flight) and the time is taken from its
start until storage has committed the last row.  Then the same again while a flooder process
opens ``--flood-rate`` connections a second, each a CONNECT as ``esp32`` with a wrong password
(what a password-guessing client does), reads the CONNACK and closes.

Prints one JSON line: seconds and msgs/s without and with the flood, the flood's attempts,
refusals and CONNACK latency, the hub's login counters (``hub_broker_logins_total``) and the
largest event-loop stall seen by a 10 ms ticker in the hub's process.  Runs against whatever
``hub`` is importable, so the same script measures the code before a change (e.g.
``PYTHONPATH=/path/to/old/checkout:/path/to/old/checkout/plugins/esp32_node``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from hub import Hub
from hub.testing import free_port, make_hub

PASSWORD = "bench-esp32-password"
MAC = "24:0a:c4:00:00:01"


# --- the two helper processes ----------------------------------------------------------------
def publish(port: int, messages: int) -> None:
    """Publisher process: ``messages`` QoS 1 messages, at most 100 unacknowledged, then print how many were acked."""
    acked = threading.Semaphore(0)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-publisher", protocol=paho.MQTTv311)
    client.username_pw_set("esp32", PASSWORD)
    client.max_inflight_messages_set(100)
    client.on_publish = lambda *args: acked.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    for seq in range(messages):
        payload = json.dumps({"timestamp": time.time(), "seq": seq, "temperature": 20 + seq % 10, "uptime": seq})
        client.publish(f"devices/{MAC}/data", payload, qos=1)
    for _ in range(messages):
        if not acked.acquire(timeout=120):
            break
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"sent": messages}), flush=True)


def flood(port: int, rate: float) -> None:
    """Flooder process: ``rate`` bad CONNECTs a second until SIGTERM; then print what the broker answered."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *args: stop.set())
    refused = accepted = silent = 0
    latencies: list[float] = []
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        answer: list[object] = []
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        client.username_pw_set("esp32", "wrong-password")
        client.on_connect = lambda client, userdata, flags, code, properties: answer.append(code)
        started = time.monotonic()
        try:
            client.connect("127.0.0.1", port)
            while not answer and time.monotonic() - started < 30 and not stop.is_set():
                client.loop(timeout=0.01)
        except OSError:
            pass
        client.disconnect()
        if answer:
            latencies.append(time.monotonic() - started)
            refused += answer[0].is_failure  # type: ignore[attr-defined]
            accepted += not answer[0].is_failure  # type: ignore[attr-defined]
        else:
            silent += 1
        next_at += interval
        stop.wait(max(next_at - time.monotonic(), 0))
    latencies.sort()
    summary = {
        "attempts": refused + accepted + silent,
        "refused": refused,
        "accepted": accepted,
        "no_answer": silent,
        "connack_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "connack_max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }
    print(json.dumps(summary), flush=True)


def helper(role: str, port: int, value: float) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--role", role, "--port", str(port), "--value", str(value)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


# --- the hub side ---------------------------------------------------------------------------
def build_hub(port: int, data_dir: Path) -> Hub:
    from hub_esp32_node import plugin as esp32_node

    raw = {
        "hub": {"name": "bench", "data_dir": str(data_dir), "log_level": "error"},
        "broker": {"port": port, "users": {"esp32": PASSWORD}},
        "storage": {"db_url": f"sqlite+aiosqlite:///{data_dir / 'hub.db'}"},
    }
    builtins = ("hub.plugins.broker", "hub.plugins.storage", "hub.plugins.mqtt")
    return make_hub(raw, builtins=builtins, plugins=[(esp32_node, "esp32_node")])


async def lag_ticker(worst: list[float]) -> None:
    """Largest lateness of a 10 ms sleep: how long the event loop was held."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        worst[0] = max(worst[0], time.perf_counter() - before - 0.01)


async def ingest(hub: Hub, port: int, messages: int) -> dict:
    stored_before = hub.metrics.value("stored_rows")
    worst = [0.0]
    ticker = asyncio.create_task(lag_ticker(worst))
    started = time.perf_counter()
    publisher = helper("publish", port, messages)
    stored, finished, last_progress = 0.0, started, started
    while stored < messages:
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        if hub.metrics.value("stored_rows") - stored_before > stored:
            stored, finished, last_progress = hub.metrics.value("stored_rows") - stored_before, now, now
        elif publisher.poll() is not None and now - last_progress > 10:
            break  # the publisher is done and nothing more arrives: the rest is lost
    seconds = finished - started
    ticker.cancel()
    await asyncio.to_thread(publisher.communicate, timeout=120)
    return {
        "stored": int(stored),
        "seconds": round(seconds, 3),
        "msgs_per_s": round(stored / seconds) if seconds else 0,
        "max_loop_stall_ms": round(worst[0] * 1000, 1),
    }


def login_counts(hub: Hub) -> dict[str, int]:
    results = ("accepted", "accepted_cached", "bad_password", "throttled", "busy", "unknown_user")
    return {result: int(hub.metrics.value("broker_logins", result=result)) for result in results}


async def run(args: argparse.Namespace) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        hub = build_hub(port, Path(tmp))
        await hub.async_start()
        flooder = None
        try:
            quiet = await ingest(hub, port, args.messages)
            flooder = helper("flood", port, args.flood_rate)
            await asyncio.sleep(2)  # let the flood reach its steady state (past the throttle's burst)
            flooded = await ingest(hub, port, args.messages)
            flooder.send_signal(signal.SIGTERM)
            out, _ = await asyncio.to_thread(flooder.communicate, timeout=60)
        finally:
            if flooder is not None and flooder.poll() is None:
                flooder.kill()
            await hub.async_stop()
    return {
        "messages": args.messages,
        "flood_rate": args.flood_rate,
        "without_flood": quiet,
        "with_flood": flooded,
        "flood": json.loads(out.strip().splitlines()[-1]),
        "logins": login_counts(hub),
    }


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the hub's rate-limited warnings about the flood are expected
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--flood-rate", type=float, default=20.0, help="bad CONNECTs per second")
    parser.add_argument("--role", choices=("publish", "flood"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--value", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "publish":
        publish(args.port, int(args.value))
    elif args.role == "flood":
        flood(args.port, args.value)
    else:
        print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
