"""End-to-end ingest benchmark: QoS 1 telemetry through the hub's real path into the database.

    python benchmarks/ingest.py --db postgresql+asyncpg://postgres@127.0.0.1/test --nodes 100 --messages 200000

1. Without ``--broker`` it starts a private Mosquitto tuned like ``deploy/mosquitto.conf`` on a free port.
2. Baseline: a bare gmqtt subscriber (QoS 1, MQTT 5) that only counts, fed by the load generator
   (``loadgen.py``) in a separate process: the limit of broker + client on this machine.
3. Hub: the real hub in this process (mqtt + storage + presence built-ins, the esp32_node plugin) with
   the same load; measured from the publisher's start until the last row is committed.  Then the
   database is counted: ``stored`` rows, ``lost`` = acknowledged-by-broker minus stored,
   ``duplicates`` = rows beyond one per (node, seq).

Prints one JSON line with sent, stored, lost, duplicates, msgs_per_s, baseline_msgs_per_s, ratio, and the
hub's longest event-loop lag (``loop_lag_max_s``, wall clock: on a shared machine it includes time the process
was not scheduled) and the most CPU its loop thread used in one 50 ms sample (``loop_busy_max_s``).
The database named by ``--db`` gets the hub's tables; the benchmark deletes its own rows first.

``--transport rabbitmq --workers 1,2`` measures the RabbitMQ path instead (RabbitMQ's MQTT plugin -> N
``hub run --role worker`` processes -> the database, against a bare aio-pika consumer): see
``ingest_rabbitmq.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv50
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub import Hub
from hub.core.hub import freeze_startup_heap
from hub.testing import PrivateMosquitto, make_hub

HERE = Path(__file__).resolve().parent


def start_publisher(broker: str, nodes: int, messages: int) -> subprocess.Popen[str]:
    """The load generator in its own process (so it does not share this process's core)."""
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE / "loadgen.py"),
            "--broker",
            broker,
            "--nodes",
            str(nodes),
            "--messages",
            str(messages),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def publisher_result(process: subprocess.Popen[str]) -> dict:
    out, _ = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed with exit code {process.returncode}")
    return json.loads(out.strip().splitlines()[-1])


async def baseline(broker: str, nodes: int, messages: int) -> dict:
    """Messages per second a bare gmqtt subscriber receives from the same load."""
    parts = urlsplit(broker)
    received = 0
    done = asyncio.Event()
    last = 0.0

    def on_message(client, topic, payload, qos, properties):
        nonlocal received, last
        received += 1
        last = time.perf_counter()
        if received >= messages:
            done.set()
        return 0

    client = Client(f"bench-baseline-{uuid.uuid4().hex[:8]}")
    client.on_message = on_message
    await client.connect(parts.hostname, parts.port, version=MQTTv50)
    client.subscribe("devices/+/data", qos=1)
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    publisher = start_publisher(broker, nodes, messages)
    try:
        await asyncio.wait_for(done.wait(), timeout=600)
    finally:
        result = await asyncio.to_thread(publisher_result, publisher)
        await client.disconnect()
    seconds = last - started
    return {"received": received, "sent": result["sent"], "msgs_per_s": round(received / seconds)}


def build_hub(broker: str, db_url: str, data_dir: Path) -> Hub:
    from hub_esp32_node import plugin as esp32_node

    raw = {
        "hub": {"name": "bench", "data_dir": str(data_dir), "log_level": "warning"},
        "mqtt": {"broker": broker, "client_id": f"bench-hub-{uuid.uuid4().hex[:8]}"},
        "storage": {"db_url": db_url},
    }
    builtins = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence")
    return make_hub(raw, builtins=builtins, plugins=[(esp32_node, "esp32_node")])


async def count_rows(db_url: str) -> tuple[int, int]:
    """(rows, distinct (node, seq)) in the telemetry table."""
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT count(*) FROM telemetry"))).scalar_one()
            distinct = (
                await conn.execute(text("SELECT count(*) FROM (SELECT DISTINCT node_ref, dedupe FROM telemetry) d"))
            ).scalar_one()
    finally:
        await engine.dispose()
    return rows, distinct


async def clear_rows(db_url: str) -> None:
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            for table in ("telemetry", "status_history", "entities", "nodes"):
                await conn.execute(text(f"DELETE FROM {table}"))
    finally:
        await engine.dispose()


async def through_hub(broker: str, db_url: str, nodes: int, messages: int, data_dir: Path) -> dict:
    """Messages per second from the publisher's start to the last committed row."""
    hub = build_hub(broker, db_url, data_dir)
    await hub.async_start()
    freeze_startup_heap()  # as `hub run` does
    await clear_rows(db_url)
    await asyncio.sleep(0.5)
    stored_before = hub.metrics.value("stored_rows")
    started = time.perf_counter()
    publisher = start_publisher(broker, nodes, messages)
    result_task = asyncio.create_task(asyncio.to_thread(publisher_result, publisher))
    last_progress, last_stored, finished = time.perf_counter(), 0.0, started
    while True:
        await asyncio.sleep(0.02)
        stored = hub.metrics.value("stored_rows") - stored_before
        now = time.perf_counter()
        if stored != last_stored:
            last_stored, last_progress, finished = stored, now, now
        if result_task.done() and stored >= result_task.result()["sent"]:
            break
        if now - last_progress > 10:
            break  # nothing more arrives: the rest is lost
    sent = (await result_task)["sent"]
    await hub.async_stop()
    rows, distinct = await count_rows(db_url)
    seconds = finished - started
    return {
        "sent": sent,
        "stored": distinct,
        "lost": max(sent - distinct, 0),
        "duplicates": rows - distinct,
        "msgs_per_s": round(distinct / seconds) if seconds else 0,
        "seconds": round(seconds, 3),
        "loop_lag_max_s": round(hub.loop_lag.max_lag, 3),
        "loop_busy_max_s": round(hub.loop_lag.max_busy, 3),
    }


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        workdir = Path(tmp)
        broker = PrivateMosquitto(workdir / "mosquitto") if args.broker is None else None
        if broker is not None:
            broker.start()
        url = args.broker or broker.url  # type: ignore[union-attr]
        try:
            base = await baseline(url, args.nodes, args.messages) if not args.skip_baseline else None
            hub = await through_hub(url, args.db, args.nodes, args.messages, workdir / "hub")
        finally:
            if broker is not None:
                broker.stop()
    baseline_rate = base["msgs_per_s"] if base else None
    return {
        "db": urlsplit(args.db).scheme,
        "nodes": args.nodes,
        "messages": args.messages,
        **hub,
        "baseline_msgs_per_s": baseline_rate,
        "ratio": round(hub["msgs_per_s"] / baseline_rate, 3) if baseline_rate else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="End-to-end ingest benchmark (see the module docstring).")
    parser.add_argument("--broker", help="MQTT broker URL (default: start a private Mosquitto)")
    parser.add_argument("--db", required=True, help="SQLAlchemy URL, e.g. sqlite+aiosqlite:////tmp/bench.db")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--transport", choices=("mqtt", "rabbitmq"), default="mqtt")
    import ingest_rabbitmq  # the RabbitMQ path's options and run, in their own module

    ingest_rabbitmq.add_arguments(parser)
    args = parser.parse_args()
    runner = ingest_rabbitmq.run if args.transport == "rabbitmq" else run
    print(json.dumps(asyncio.run(runner(args))), flush=True)


if __name__ == "__main__":
    main()
