"""The dashboard's Provisioning page with many defined ESPHome nodes: what ``GET /api/esphome/nodes`` costs.

    python benchmarks/esphome_provisioning.py [--nodes 500] [--requests 20]

A firmware folder in a temporary directory holds the repository's shared package (``common/base.yaml``) and
``--nodes`` node files copied from ``relay.yaml`` under other names; half of them have a compile record (and a
"binary") and a validation record, as after a day's work.  A hub with storage (SQLite), http and esphome serves
it (each node file is a placeholder node in its registry).  Measured over loopback with aiohttp:

* the page's one request, ``GET /api/esphome/nodes``: the first (cold: every file read and parsed) and the
  median and worst of ``--requests`` more (warm); the body's size, plain and gzipped;
* the same rows built in-process (``Provisioning.rows``), the server's share of the time without HTTP, in wall
  time and in CPU time (the figure a loaded machine changes least);
* ``GET /api/esphome/nodes/{name}`` for one node (what the page asks after each job).

Prints one JSON line.  Figures, never assertions: the machine is shared (quote ``uptime`` with them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import hub_esphome.plugin
from hub_esphome.builds import Build, write_build, write_validation
from hub_esphome.runtime import DATA_PROVISIONING

from hub import DATA_HTTP_URL, Hub
from hub.testing import create_user_and_token, make_hub

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware" / "esphome"


def make_firmware(directory: Path, count: int) -> list[str]:
    """``count`` node files like relay.yaml, half of them with compile and validation records; their names."""
    shutil.copytree(FIRMWARE / "common", directory / "common")
    shutil.copy(FIRMWARE / "secrets.example.yaml", directory / "secrets.yaml")
    template = (FIRMWARE / "relay.yaml").read_text()
    names = []
    for i in range(count):
        name = f"relay-{i:04d}"
        names.append(name)
        path = directory / f"{name}.yaml"
        path.write_text(
            template.replace("name: relay-1", f"name: {name}").replace(
                "friendly_name: Relay 1", f"friendly_name: R {i}"
            )
        )
        if i % 2:
            continue
        build_path = directory / ".esphome" / "build" / name
        binary = build_path / ".pioenvs" / name / "firmware.ota.bin"
        binary.parent.mkdir(parents=True)
        binary.write_bytes(b"\xe9" + bytes(1023))
        write_build(
            build_path,
            Build(
                name=name,
                file=path.name,
                binary=str(binary),
                size=1024,
                sha256="0" * 64,
                version="1.0.0",
                esphome_version="2026.10.0",
                config_hash="0x1a2b3c4d",
                source_digest="x",
                compiled_at=time.time(),
                compiled_by="bench",
            ),
        )
        write_validation(directory, name, ok=True, source_digest="x", by="bench")
    return names


async def start_hub(data_dir: Path, firmware: Path) -> tuple[Hub, str]:
    raw = {
        "hub": {"data_dir": str(data_dir)},
        "storage": {"db_url": f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"},
        "http": {"port": 0},
        "esphome": {"firmware_dir": str(firmware), "executable": "/nonexistent/esphome"},
    }
    hub = make_hub(raw, builtins=("hub.plugins.storage", "hub.plugins.http"), plugins=[(hub_esphome.plugin, "esphome")])
    token = (await create_user_and_token(hub)).token
    await hub.async_start()
    return hub, token


async def timed_get(http: aiohttp.ClientSession, url: str) -> tuple[float, int, Any]:
    started = time.perf_counter()
    async with http.get(url, headers={"Accept-Encoding": "identity"}) as response:
        body = await response.read()
        assert response.status == 200, body[:300]
    return time.perf_counter() - started, len(body), json.loads(body)


async def main(count: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hub-bench-provisioning-") as tmp:
        firmware = Path(tmp) / "firmware"
        firmware.mkdir()
        names = make_firmware(firmware, count)
        hub, token = await start_hub(Path(tmp) / "data", firmware)
        try:
            url = hub.data[DATA_HTTP_URL]
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
                cold, size, answer = await timed_get(http, f"{url}/api/esphome/nodes")
                assert len(answer["nodes"]) == count
                warm = [(await timed_get(http, f"{url}/api/esphome/nodes"))[0] for _ in range(requests)]
                async with http.get(f"{url}/api/esphome/nodes", headers={"Accept-Encoding": "gzip"}) as response:
                    await response.read()
                    gzipped = int(response.headers.get("Content-Length") or 0) or None
                    encoding = response.headers.get("Content-Encoding")
                one = [(await timed_get(http, f"{url}/api/esphome/nodes/{names[0]}"))[0] for _ in range(requests)]
            provisioning = hub.data[DATA_PROVISIONING]
            in_process, cpu = [], []
            for _ in range(requests):
                started, started_cpu = time.perf_counter(), time.process_time()
                provisioning.rows()
                in_process.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
        finally:
            await hub.async_stop()

    def ms(value: float) -> float:
        return round(value * 1000, 1)

    return {
        "nodes": count,
        "list_cold_ms": ms(cold),
        "list_warm_median_ms": ms(statistics.median(warm)),
        "list_warm_max_ms": ms(max(warm)),
        "rows_in_process_median_ms": ms(statistics.median(in_process)),
        "rows_in_process_cpu_median_ms": ms(statistics.median(cpu)),
        "one_node_median_ms": ms(statistics.median(one)),
        "body_bytes": size,
        "body_gzip_bytes": gzipped,
        "content_encoding_when_asked": encoding,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.nodes, args.requests))))
