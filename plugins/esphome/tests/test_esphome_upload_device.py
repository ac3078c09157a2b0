"""``hub esphome upload NAME --device HOST``, for real: ESPHome's own OTA protocol into the real host node.

On ESPHome's ``host`` platform ``ota: platform: esphome`` works like on a board:
the node listens on port 8082, takes the image (MD5-checked), replaces its
program file with it and re-executes it.  So the test runs the node of
``nodes/native_host.yaml`` (project version 1.0.0) as in the native API tests,
compiles the same YAML with ``version: 2.0.0`` through ``hub esphome compile``,
and runs ``hub esphome upload hub-native-test --device 127.0.0.1`` inside the
node's network namespace (``nsenter --net``: the node's port is on no network,
and fixed ports never clash).  Asserted: the upload succeeds, the program file
now holds exactly the compiled bytes (SHA-256 of the build record), and the hub,
connected over the native API, sees the node come back reporting 2.0.0.

The 2.0.0 build is compiled in a folder of the host-node cache
(``~/.cache/hub/esphome-host/upload-<key>/``), so on a machine that ran it once
ESPHome finds nothing to rebuild.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hub_esphome.plugin
import pytest
import yaml
from hub_esphome.builds import BUILD_RECORD, file_sha256
from native_node import (
    NODE_MAC,
    NODE_NAME,
    NODE_YAML,
    HostNode,
    build,
    cache_dir,
    esphome_executable,
    require_network_namespace,
)

from hub.testing import unavailable, wait_until

pytestmark = pytest.mark.esphome

NEW_VERSION = "2.0.0"


def _hub_cli(*argv: str, prefix: tuple[str, ...] = (), timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HUB_ESPHOME"}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "hub", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def compiled_v2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """``hub esphome compile`` of the node at 2.0.0: (config.yaml, the build record).  Held under a lock."""
    esphome = esphome_executable()
    require_network_namespace()
    source = NODE_YAML.read_text().replace('version: "1.0.0"', f'version: "{NEW_VERSION}"')
    assert f'version: "{NEW_VERSION}"' in source
    key = hashlib.sha256(source.encode() + str(esphome).encode()).hexdigest()[:16]
    work = cache_dir() / f"upload-{key}"
    firmware = work / "firmware"
    firmware.mkdir(parents=True, exist_ok=True)
    (firmware / f"{NODE_NAME}.yaml").write_text(source)
    (firmware / "secrets.yaml").write_text("# the host node uses no secrets\n")
    tmp = tmp_path_factory.mktemp("upload")
    config = tmp / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "hub": {"data_dir": str(tmp / "data")},
                "storage": {"db_url": f"sqlite+aiosqlite:///{tmp / 'hub.db'}"},
                "esphome": {"firmware_dir": str(firmware), "executable": str(esphome)},
            }
        )
    )
    with open(work / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be compiling in the same folder
        run = _hub_cli("esphome", "compile", NODE_NAME, "-c", str(config), prefix=("unshare", "-n"))  # offline
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        record = json.loads((firmware / ".esphome" / "build" / NODE_NAME / BUILD_RECORD).read_text())
        yield config, record


async def test_upload_with_device_flashes_the_real_node_over_esphome_ota(
    compiled_v2: tuple[Path, dict[str, Any]], hub_factory: Any, tmp_path: Path
) -> None:
    require_network_namespace()
    if shutil.which("nsenter") is None:
        unavailable("the upload runs in the node's network namespace: nsenter (util-linux) is needed")
    config, record = compiled_v2
    assert record["version"] == NEW_VERSION
    # The node runs a copy of the cached 1.0.0 program: the upload replaces the file it runs from.
    running = tmp_path / "program"
    shutil.copy(build(esphome_executable()), running)
    node = HostNode(running, tmp_path / "node")
    await node.start()
    try:
        hub = await hub_factory(
            {
                "storage": {"db_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", "flush_interval": 0.05},
                "esphome": {"native_api": {"nodes": [{"host": "127.0.0.1", "port": node.port}]}},
            },
            builtins=("hub.plugins.storage", "hub.plugins.presence"),
            plugins=[(hub_esphome.plugin, "esphome")],
        )
        registered = await wait_until(lambda: hub.registry.get(NODE_MAC), timeout=30, message="the node connected")
        await wait_until(lambda: registered.firmware_version == "1.0.0", message="the node reporting 1.0.0")

        assert node.process is not None
        upload = await asyncio.to_thread(
            _hub_cli,
            "esphome",
            "upload",
            NODE_NAME,
            "--device",
            "127.0.0.1",
            "-c",
            str(config),
            prefix=("nsenter", f"--net=/proc/{node.process.pid}/ns/net"),
            timeout=300,
        )
        assert upload.returncode == 0, upload.stdout[-3000:] + upload.stderr[-3000:]
        out = upload.stdout
        assert f"==> esphome upload --device 127.0.0.1 {NODE_NAME}.yaml" in out
        assert "OTA successful" in out and f"({record['size']} bytes)" in out  # ESPHome's own lines, streamed
        # Exactly the compiled bytes (ESPHome sends it deflated; the node checks the MD5 and validates the ELF).
        assert file_sha256(running) == record["sha256"]
        # The node re-executed the new program; the hub reconnects and reads the new version.
        await wait_until(
            lambda: registered.firmware_version == NEW_VERSION, timeout=30, message=f"the node reporting {NEW_VERSION}"
        )
        assert node.process.poll() is None
        assert "OTA staged at" in node.log.read_text(errors="replace")
    finally:
        await node.close()
