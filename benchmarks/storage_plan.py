"""The storage writer's in-memory work per reading, no database: add, plan, records, rollup accumulation.

    python benchmarks/storage_plan.py --nodes 10000 [--batches 20] [--rows 10000]

What the writer does to a batch besides talking to the database, timed step by step over
``--batches`` batches of ``--rows`` readings from ``--nodes`` registered nodes (round-robin, five
readings each, as the ingest benchmark's load generator sends):

* ``add``: ``Batch.add_reading``, what the writer's listener does as each message arrives (validate,
  encode the JSON, note the node and whether its ``last_seen`` is due);
* ``plan``: ``build_plan`` (the nodes to write, the moved ``last_seen`` values);
* ``records``: ``telemetry_records`` (each reading's node id and rollup epoch);
* ``accumulate``: ``RollupAccumulator.add`` after the commit.

Prints one JSON line of microseconds per reading for each step.  The machine's noise reaches these
figures too: compare runs interleaved, several of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from storage_writer import register_nodes

from hub.core.hub import freeze_startup_heap
from hub.plugins.storage.batch import Batch, build_plan, telemetry_records
from hub.plugins.storage.rollup_deltas import RollupAccumulator
from hub.testing import make_hub


async def run(nodes: int, batches: int, rows: int) -> dict[str, object]:
    hub = make_hub({"hub": {"data_dir": "/tmp/hub-storage-plan"}}, builtins=())
    await hub.async_start()
    try:
        registry = hub.registry
        fleet = await register_nodes(hub, nodes)
        now = time.time()
        for node in fleet:
            node.last_seen = now
        ids = {node.node_id: ref for ref, node in enumerate(fleet, 1)}
        persisted = dict.fromkeys(ids, now)
        freeze_startup_heap()  # the collector as `hub run` tunes it, this fleet frozen as a restored one is
        accumulator = RollupAccumulator()
        spent = dict.fromkeys(("add", "plan", "records", "accumulate"), 0.0)
        seq = 0
        for _ in range(batches):
            batch = Batch(asyncio.get_running_loop())
            readings = []
            for _ in range(rows):
                node = fleet[seq % nodes]
                seq += 1
                states = {
                    "temperature": 20.0 + seq % 97 * 0.1,
                    "humidity": 40 + seq % 30,
                    "uptime": seq,
                    "free_heap": 123456 - seq % 1000,
                    "wifi_rssi": -40 - seq % 30,
                }
                readings.append((node.node_id, now + seq * 1e-4, states, seq * 7919, now))
            started = time.perf_counter()
            for node_id, ts, states, dedupe, seen in readings:
                batch.add_reading(node_id, ts, states, dedupe, seen, persisted.get(node_id))
            added = time.perf_counter()
            plan = build_plan(batch, registry, ids, persisted)
            planned = time.perf_counter()
            records = telemetry_records(plan.rows, ids, {}, epoch=1)
            recorded = time.perf_counter()
            accumulator.add(records.rows, records.documents)
            spent["add"] += added - started
            spent["plan"] += planned - added
            spent["records"] += recorded - planned
            spent["accumulate"] += time.perf_counter() - recorded
        total = batches * rows
        return {
            "benchmark": "storage_plan",
            "nodes": nodes,
            **{f"{step}_us_per_row": round(1e6 * seconds / total, 2) for step, seconds in spent.items()},
        }
    finally:
        await hub.async_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--rows", type=int, default=10_000, help="readings a batch")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.nodes, args.batches, args.rows))))


if __name__ == "__main__":
    main()
