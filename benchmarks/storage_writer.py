"""Storage batch writer throughput: readings through the real registry path into a real database.

    python benchmarks/storage_writer.py --db sqlite --rows 300000
    python benchmarks/storage_writer.py --db postgresql://postgres@127.0.0.1/postgres --rows 300000

``--db sqlite`` writes a fresh SQLite file in a temporary directory; a PostgreSQL URL names the
server, on which a scratch database is created and dropped afterwards (``--in-place`` writes into
the named database instead).  A hub with only the storage plugin is started from its normal config
path; the feeder calls ``registry.report_states`` for ``--nodes`` ESP32-like nodes round-robin (six
readings each, a dedupe value each) as fast as it can, the way a transport does: it yields to the
event loop every 100 messages and, like an MQTT client with a receive window, never has more than
``--window`` messages unacknowledged (it awaits the durability barrier of the oldest).

Prints one JSON line:

* ``rows_per_s`` — readings committed per second, first report to last commit;
* ``batch_ms_p50`` / ``batch_ms_p99`` — time to write and commit one batch (from the
  ``hub_batch_seconds`` histogram, interpolated within buckets);
* ``ack_ms_p50`` / ``ack_ms_p99`` — from handing a message to the registry to its barrier resolving
  (what delays a broker acknowledgement);
* ``cpu_us_per_row`` — this process's CPU time per reading, feeder and registry included;
* ``batches``, ``stored`` (counted in the database afterwards; must equal ``rows``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from hub import Hub, Node
from hub.plugins.storage.config import db_url as normalize_db_url
from hub.plugins.storage.engine import create_engine
from hub.testing import make_hub
from hub.testing.postgres import create_scratch_database, drop_scratch_database

YIELD_EVERY = 100


KEYS = ("temperature", "humidity", "uptime", "free_heap", "wifi_rssi", "status")


async def start_hub(db_url: str, data_dir: Path, **storage: Any) -> Hub:
    """A started hub with only the storage plugin, built through the normal config validation."""
    raw = {"hub": {"data_dir": str(data_dir)}, "storage": {"db_url": db_url, **storage}}
    hub = make_hub(raw, builtins=("hub.plugins.storage",))
    await hub.async_start()
    return hub


async def register_nodes(hub: Hub, count: int) -> list[Node]:
    """``count`` ESP32-like nodes with the entities of the JSON contract's usual payload, committed."""
    registry = hub.registry
    nodes = []
    for i in range(count):
        node = registry.get_or_register(
            ":".join(f"{b:02x}" for b in (0xAA0000000000 + i).to_bytes(6, "big")), limited=False
        )  # an existing fleet, not new nodes arriving
        for key in KEYS:
            registry.ensure_entity(node, key)
        nodes.append(node)
    await hub.durability.wait_committed()
    return nodes


@contextlib.asynccontextmanager
async def database(db: str, data_dir: Path, in_place: bool = False) -> AsyncIterator[str]:
    """The URL to benchmark against: a SQLite file in ``data_dir``, or a scratch PostgreSQL database."""
    if db == "sqlite":
        yield f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
    elif in_place:
        yield str(normalize_db_url(db))
    else:
        url = str(normalize_db_url(await create_scratch_database(db)))
        try:
            yield url
        finally:
            await drop_scratch_database(url)


async def run(db_url: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    hub = await start_hub(db_url, data_dir, batch_size=args.batch_size, flush_interval=args.flush_interval)
    registry = hub.registry
    nodes = await register_nodes(hub, args.nodes)

    acks: list[float] = []
    window: deque[tuple[int, asyncio.Future[None]]] = deque()
    loop = asyncio.get_running_loop()
    now = time.time()
    cpu_start, started = time.process_time(), time.perf_counter()
    for i in range(args.rows):
        node = nodes[i % len(nodes)]
        states = {
            "temperature": 20.0 + (i % 97) * 0.1,
            "humidity": 40 + i % 30,
            "uptime": i,
            "free_heap": 123456 - i % 1000,
            "wifi_rssi": -40 - i % 30,
            "status": "online",
        }
        # dedupe values are payload hashes in real life: spread over the whole int64 range, like these
        dedupe = (i * 0x9E3779B97F4A7C15) & 0x7FFFFFFFFFFFFFFF
        registry.report_states(node, states, now + i * 0.001, dedupe=dedupe, received=now)
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            future = hub.durability.barrier()
            if future is not None:
                sent = loop.time()
                future.add_done_callback(lambda _f, sent=sent: acks.append(loop.time() - sent))
                window.append((i, future))
            while window and i - window[0][0] >= args.window:
                await window.popleft()[1]
            await asyncio.sleep(0)
    for _, future in window:
        await future
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_start
    count = hub.metrics.registry.get_sample_value("hub_batch_seconds_count") or 0
    p50, p99 = _histogram_quantiles(hub, (0.5, 0.99))
    await hub.async_stop()
    stored = await _count_rows(db_url)
    acks.sort()
    return {
        "db": make_url(db_url).get_backend_name(),
        "rows": args.rows,
        "nodes": args.nodes,
        "batch_size": args.batch_size,
        "flush_interval": args.flush_interval,
        "window": args.window,
        "rows_per_s": round(args.rows / elapsed),
        "batch_ms_p50": round(p50 * 1000, 1),
        "batch_ms_p99": round(p99 * 1000, 1),
        "ack_ms_p50": round(statistics.median(acks) * 1000, 1) if acks else None,
        "ack_ms_p99": round(acks[int(len(acks) * 0.99)] * 1000, 1) if acks else None,
        "cpu_us_per_row": round(cpu / args.rows * 1e6, 2),
        "batches": int(count),
        "stored": stored,
    }


def _histogram_quantiles(hub: Hub, quantiles: tuple[float, ...]) -> list[float]:
    """Quantiles of hub_batch_seconds, linearly interpolated within buckets (as Prometheus does)."""
    buckets: list[tuple[float, float]] = []
    for metric in hub.metrics.registry.collect():
        if metric.name == "hub_batch_seconds":
            for sample in metric.samples:
                if sample.name.endswith("_bucket"):
                    buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    results = []
    for q in quantiles:
        rank, lower_bound, lower_count = q * total, 0.0, 0.0
        value = 0.0
        for bound, count in buckets:
            if count >= rank:
                if bound == float("inf"):
                    value = lower_bound
                else:
                    span = count - lower_count
                    value = lower_bound + (bound - lower_bound) * ((rank - lower_count) / span if span else 0)
                break
            lower_bound, lower_count = bound, count
        results.append(value)
    return results


async def _count_rows(db_url: str) -> int:
    engine = create_engine(make_url(db_url))
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT count(*) FROM telemetry"))).scalar_one())
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL server URL")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--flush-interval", type=float, default=0.05)
    parser.add_argument("--window", type=int, default=10_000, help="most unacknowledged messages (default 10000)")
    parser.add_argument("--in-place", action="store_true", help="write into the named PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        async with database(args.db, Path(tmp), args.in_place) as url:
            print(json.dumps(await run(url, Path(tmp), args)))


if __name__ == "__main__":
    asyncio.run(main())
