"""Command round trip: REST ``POST /api/nodes/{id}/commands`` → node executes → ``succeeded``, with a fleet online.

    python benchmarks/command_roundtrip.py [--nodes 1000] [--commands 500] [--concurrency 10] [--db URL]

1. A private Mosquitto (tuned like ``deploy/mosquitto.conf``) on a free port.
2. ``hub simulate`` in its own process: ``--nodes`` simulated ESP32 nodes, each with its own MQTT connection,
   reporting every ``--interval`` seconds and answering commands as firmware does (``received``, then ``ok``).
3. The hub in this process (storage, mqtt, presence, http, esp32_node) with the HTTP API on a free port.
4. Once every node is online, ``--commands`` STATUS_REQUEST commands go to random nodes, ``--concurrency`` at a
   time; each is timed from the POST to the answer of ``GET /api/commands/{id}?wait=…`` that shows it
   ``succeeded``.

Prints one JSON line: nodes, commands, succeeded, p50_ms, p99_ms, max_ms, commands_per_s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from hub import DATA_HTTP_URL, STATUS_ONLINE, normalize_mac
from hub.core.hub import freeze_startup_heap
from hub.simulator import node_macs
from hub.testing import PrivateMosquitto, create_user_and_token, make_hub

BUILTINS = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence", "hub.plugins.http")
SEED = 7


async def run(args: argparse.Namespace, workdir: Path) -> dict:
    broker = PrivateMosquitto(workdir / "mosquitto").start()
    simulator = None
    try:
        import hub_esp32_node.plugin

        config = {
            "hub": {"data_dir": str(workdir / "data"), "log_level": "warning"},
            "storage": {"db_url": args.db or f"sqlite+aiosqlite:///{workdir / 'hub.db'}"},
            "mqtt": {"broker": broker.url, "client_id": "hub-cmd-bench"},
            "http": {"port": 0},
        }
        hub = make_hub(config, builtins=BUILTINS, plugins=[(hub_esp32_node.plugin, "esp32_node")])
        token = (await create_user_and_token(hub)).token
        await hub.async_start()
        freeze_startup_heap()
        simulator = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("hub")),
                "simulate",
                "--broker",
                broker.url,
                "--nodes",
                str(args.nodes),
                "--interval",
                str(args.interval),
                "--seed",
                str(SEED),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        macs = [normalize_mac(mac) for mac in node_macs(SEED, args.nodes)]
        deadline = time.monotonic() + 120
        while sum(1 for mac in macs if (n := hub.registry.get(mac)) and n.status == STATUS_ONLINE) < args.nodes:
            if time.monotonic() > deadline:
                raise SystemExit("not every simulated node came online within 120 s")
            await asyncio.sleep(0.2)
        url = hub.data[DATA_HTTP_URL]
        latencies: list[float] = []
        failures: list[str] = []
        queue: asyncio.Queue[str] = asyncio.Queue()
        rng = random.Random(1)
        for _ in range(args.commands):
            queue.put_nowait(rng.choice(macs))

        async def worker(http: aiohttp.ClientSession) -> None:
            while not queue.empty():
                mac = queue.get_nowait()
                started = time.perf_counter()
                async with http.post(f"{url}/api/nodes/{mac}/commands", json={"action": "STATUS_REQUEST"}) as r:
                    command = await r.json()
                while command.get("status") not in ("succeeded", "failed", "expired", "cancelled"):
                    async with http.get(f"{url}/api/commands/{command['id']}", params={"wait": "10"}) as r:
                        command = await r.json()
                if command["status"] == "succeeded":
                    latencies.append(time.perf_counter() - started)
                else:
                    steps = [step["status"] for step in command["history"]]
                    failures.append(f"{command['status']} after {'/'.join(steps)}: {command['detail']}")

        began = time.perf_counter()
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            await asyncio.gather(*(worker(http) for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - began
        await hub.async_stop()
        latencies.sort()
        return {
            "nodes": args.nodes,
            "commands": args.commands,
            "succeeded": len(latencies),
            "failed": len(failures),
            "failures": failures[:5],
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "commands_per_s": round(args.commands / elapsed, 1),
        }
    finally:
        if simulator is not None:
            simulator.terminate()
            simulator.wait(timeout=30)
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--interval", type=float, default=5.0, help="telemetry interval of each node (s)")
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        print(json.dumps(asyncio.run(run(args, Path(workdir)))))


if __name__ == "__main__":
    main()
