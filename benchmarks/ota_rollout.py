"""OTA rollout benchmark: a staged rollout of a 1 MiB image to 1,000 simulated ESP32 nodes.

    python benchmarks/ota_rollout.py [--nodes 1000] [--db URL] [--rate 50] [--image-kib 1024]

1. A private Mosquitto tuned like ``deploy/mosquitto.conf`` on a free port.
2. The fleet runs in its own process (``hub.simulator`` nodes, one MQTT connection each, telemetry
   every ``--interval`` s); each node downloads its image from the hub with the link in its FIRMWARE_UPDATE
   command, checks its SHA-256 and size, reboots (``--downtime`` s) and reports the new version.
3. The hub runs in this process (storage, mqtt, presence, http, esp32_node, ota). The image is uploaded over
   the REST API, then ``POST /api/ota/rollouts`` with stages 1 %, 10 %, 50 %, 100 % at ``--rate`` nodes a
   second; the benchmark waits for ``completed``.

Prints one JSON line: the rollout's wall time (and per stage), the hub process's CPU seconds and share of a core
during the rollout (and its share over 10 s before it, the fleet online but idle, for comparison), its RSS before
and at its peak during the rollout, the fleet process's CPU, the outcome counts. Never asserted.
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
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil

from hub import DATA_HTTP_URL, Event, Hub
from hub.core.hub import freeze_startup_heap
from hub.testing import PrivateMosquitto, create_user_and_token, make_hub, wait_until

HERE = Path(__file__).resolve().parent
OLD = "1.4.2"  # what the simulator runs
NEW = "2.0.0"
IDLE_SECONDS = 10.0


# --- the fleet process -------------------------------------------------------------------------------
async def run_fleet(broker: str, nodes: int, interval: float, downtime: float) -> dict[str, Any]:
    """Run the simulated fleet until stdin closes; report how many updated."""
    from hub.simulator import Fleet, OtaBehaviour

    fleet = Fleet(broker, nodes, interval=interval, seed=42, ota_behaviour=OtaBehaviour(reboot_downtime=downtime))
    task = asyncio.create_task(fleet.run())
    print("started", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    fleet.stop()
    await task
    return {
        "updated": sum(node.firmware_version == NEW for node in fleet.nodes),
        "updates_executed": sum(node.commands.executed.count("FIRMWARE_UPDATE") for node in fleet.nodes),
    }


# --- the hub process ---------------------------------------------------------------------------------
def ota_event() -> str:
    from hub_ota.events import EVENT_OTA_ROLLOUT_UPDATED

    return EVENT_OTA_ROLLOUT_UPDATED


def build_hub(broker: str, db_url: str | None, data_dir: Path, max_image: int) -> Hub:
    from hub_esp32_node import plugin as esp32_node
    from hub_ota import plugin as ota

    builtins = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence", "hub.plugins.http")
    raw = {
        "hub": {"name": "bench", "data_dir": str(data_dir), "log_level": "warning"},
        "mqtt": {"broker": broker, "client_id": f"bench-hub-{uuid.uuid4().hex[:8]}"},
        "http": {"port": 0},
        "presence": {"initial_timeout": 120},
        "ota": {"max_image_size": max_image},
        **({"storage": {"db_url": db_url}} if db_url else {}),
    }
    return make_hub(raw, builtins=builtins, plugins=[(esp32_node, "esp32_node"), (ota, "ota")])


def image(kib: int) -> bytes:
    """A valid ESP32 application image of about ``kib`` KiB, version NEW (the ota tests' builder)."""
    sys.path.insert(0, str(HERE.parent / "plugins" / "ota" / "tests"))
    from ota_images import build_image

    return build_image(NEW, payload=kib * 1024 - 2048)


class Sampler:
    """Peak RSS of this process, sampled every 50 ms while running."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.05)

    def __enter__(self) -> Sampler:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hub-ota-bench-") as tmp:
        workdir = Path(tmp)
        with PrivateMosquitto(workdir / "mosquitto") as broker:
            hub = build_hub(broker.url, args.db, workdir / "hub", max(4 * 1024 * 1024, (args.image_kib + 64) * 1024))
            token = (await create_user_and_token(hub, "bench", uuid.uuid4().hex)).token
            await hub.async_start()
            freeze_startup_heap()  # as `hub run` does
            fleet = subprocess.Popen(
                [sys.executable, __file__, "--role", "fleet", "--broker", broker.url, "--nodes", str(args.nodes),
                 "--interval", str(args.interval), "--downtime", str(args.downtime)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert (
                    fleet.stdout is not None and (await asyncio.to_thread(fleet.stdout.readline)).strip() == "started"
                )
                await wait_until(
                    lambda: sum(1 for n in hub.registry if n.firmware_version == OLD) >= args.nodes,
                    timeout=args.interval * 3 + 60,
                    interval=0.5,
                    message=f"{args.nodes} nodes registered",
                )
                result = await rollout(hub, token, args)
            finally:
                fleet_cpu = psutil.Process(fleet.pid).cpu_times()
                out, _ = await asyncio.to_thread(fleet.communicate, "", 120)  # closing its stdin stops it
                await hub.async_stop()
    fleet_result = json.loads(out.strip().splitlines()[-1])
    return {
        "nodes": args.nodes,
        "db": urlsplit(args.db).scheme if args.db else "sqlite",
        "image_bytes": result.pop("image_bytes"),
        "rate": args.rate,
        **result,
        "fleet_cpu_s": round(fleet_cpu.user + fleet_cpu.system, 1),
        **fleet_result,
    }


async def rollout(hub: Hub, token: str, args: argparse.Namespace) -> dict[str, Any]:
    url = hub.data[DATA_HTTP_URL]
    headers = {"Authorization": f"Bearer {token}"}
    process = psutil.Process()
    idle_rss = process.memory_info().rss
    idle_before = process.cpu_times()
    await asyncio.sleep(IDLE_SECONDS)  # the fleet online and reporting, no rollout: the baseline
    idle_after = process.cpu_times()
    idle_share = (idle_after.user - idle_before.user + idle_after.system - idle_before.system) / IDLE_SECONDS
    async with aiohttp.ClientSession(headers=headers) as session:
        form = aiohttp.FormData()
        form.add_field("file", image(args.image_kib), filename="bench.bin")
        async with session.post(url + "/api/ota/firmware", data=form) as response:
            firmware = await response.json()
            assert response.status == 201, firmware
        body = {
            "firmware": NEW,
            "target": {"not_version": NEW},
            "stages": [1, 10, 50, 100],
            "rate": args.rate,
            "node_timeout": 120,
            "retries": 1,
            "retry_delay": 5,
            "max_failure_ratio": 0.05,
            "min_nodes_before_judging": 10,
        }
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_update(event: Event) -> None:  # the event a dashboard follows; no polling to add to the hub's CPU
            if event.data["rollout"]["status"] != "running" and not ended.done():
                ended.set_result(None)

        hub.bus.listen(ota_event(), on_update)
        cpu_before = process.cpu_times()
        started = time.perf_counter()
        with Sampler() as sampler:
            async with session.post(url + "/api/ota/rollouts", json=body) as response:
                created = await response.json()
                assert response.status == 201, created
            await asyncio.wait_for(ended, 3600)
        wall = time.perf_counter() - started
        cpu_after = process.cpu_times()
        async with session.get(f"{url}/api/ota/rollouts/{created['id']}") as response:
            done = await response.json()
    stages = [entry["ts"] for entry in done["history"] if entry["action"] in ("created", "stage", "completed")]
    return {
        "image_bytes": firmware["size"],
        "status": done["status"],
        "succeeded": done["counts"]["succeeded"],
        "failed": done["counts"]["failed"],
        "stage_sizes": done["stage_sizes"],
        "wall_s": round(wall, 1),
        "stage_wall_s": [round(b - a, 1) for a, b in zip(stages, stages[1:], strict=False)],
        "hub_cpu_s": round((cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system), 1),
        "hub_cpu_share": round(((cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)) / wall, 2),
        "hub_cpu_share_idle": round(idle_share, 2),
        "hub_rss_idle_mib": round(idle_rss / 2**20, 1),
        "hub_rss_peak_mib": round(sampler.peak / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="OTA rollout benchmark (see the module docstring).")
    parser.add_argument("--role", choices=["hub", "fleet"], default="hub", help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--db", help="SQLAlchemy URL (default: SQLite in a temporary directory)")
    parser.add_argument("--rate", type=float, default=50.0, help="nodes started per second")
    parser.add_argument("--image-kib", type=int, default=1024, help="image size in KiB")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between a node's reports")
    parser.add_argument("--downtime", type=float, default=0.5, help="seconds a node is down while it reboots")
    args = parser.parse_args()
    if args.role == "fleet":
        result = asyncio.run(run_fleet(args.broker, args.nodes, args.interval, args.downtime))
    else:
        result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
