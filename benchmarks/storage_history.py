"""``storage.history`` speed: 30 days of 30-second readings per node, downsampled to 500 points in SQL.

    python benchmarks/storage_history.py --db sqlite
    python benchmarks/storage_history.py --db postgresql://postgres@127.0.0.1/postgres

Writes ``--days`` days of one reading every 30 s (86,400 rows for 30 days) for each of ``--nodes``
nodes through the real registry and batch writer, then calls ``storage.history`` for one node and
one key over the whole period (``--points`` buckets) ``--repeat`` times, and over the last day.
Database as in ``storage_writer.py`` (SQLite file in a temporary directory, or a scratch PostgreSQL
database).  Prints one JSON line: ``rows_per_node``, ``history_ms_p50`` / ``history_ms_max`` for the
whole period (``resolution: auto``; ``resolution`` says what answered), ``day_ms_p50`` for the last day,
and ``buckets`` returned.  On PostgreSQL the daily partitions of the whole period are made first (as the
hub would have made them day by day), the rollups are folded once after writing (``fold_s``), and the
whole period is also timed from the raw rows (``raw_ms_p50``) and from the 1-minute rollup (``1m_ms_p50``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from storage_writer import database, register_nodes, start_hub

from hub.plugins.storage import DATA_STORAGE
from hub.plugins.storage.partitions import ensure_partitions

INTERVAL = 30.0


async def run(db_url: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    hub = await start_hub(db_url, data_dir)
    nodes = await register_nodes(hub, args.nodes)
    per_node = int(args.days * 86400 / INTERVAL)
    end = time.time()
    start = end - per_node * INTERVAL
    postgres = db_url.startswith("postgresql")
    if postgres:
        await ensure_partitions(hub.data[DATA_STORAGE].engine, start, int(args.days) + 1)
    registry = hub.registry
    for step in range(per_node):
        ts = start + step * INTERVAL
        for index, node in enumerate(nodes):
            states = {"temperature": 20 + (step + index) % 100 * 0.1, "humidity": 40 + step % 30, "uptime": step}
            registry.report_states(node, states, ts, received=ts)
        if step % 500 == 0:
            await hub.durability.wait_committed()
    await hub.durability.wait_committed()

    began = time.perf_counter()
    await hub.services.call("storage", "fold", {"timeout": 600})
    fold_seconds = time.perf_counter() - began
    used: set[str] = set()

    async def timed(window_start: float, resolution: str = "auto") -> tuple[float, int]:
        data = {"node_id": nodes[0].node_id, "key": "temperature", "start": window_start, "end": end + 1}
        began = time.perf_counter()
        result = await hub.services.call(
            "storage", "history", {**data, "points": args.points, "resolution": resolution}
        )
        if resolution == "auto" and window_start == start:
            used.add(result["resolution"])
        return time.perf_counter() - began, len(result["buckets"])

    def p50(samples: list[tuple[float, int]]) -> float:
        return round(statistics.median(t for t, _ in samples) * 1000, 1)

    full = [await timed(start) for _ in range(args.repeat)]
    day = [await timed(end - 86400) for _ in range(args.repeat)]
    extra = {}
    if postgres:
        extra = {
            "fold_s": round(fold_seconds, 2),
            "raw_ms_p50": p50([await timed(start, "raw") for _ in range(args.repeat)]),
            "1m_ms_p50": p50([await timed(start, "1m") for _ in range(args.repeat)]),
        }
    await hub.async_stop()
    return {
        "db": db_url.split(":", 1)[0],
        "nodes": args.nodes,
        "rows_per_node": per_node,
        "points": args.points,
        "buckets": full[0][1],
        "resolution": ",".join(sorted(used)),
        "history_ms_p50": p50(full),
        "history_ms_max": round(max(t for t, _ in full) * 1000, 1),
        "day_ms_p50": p50(day),
        **extra,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL server URL")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--in-place", action="store_true", help="write into the named PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        async with database(args.db, Path(tmp), args.in_place) as url:
            print(json.dumps(await run(url, Path(tmp), args)))


if __name__ == "__main__":
    asyncio.run(main())
