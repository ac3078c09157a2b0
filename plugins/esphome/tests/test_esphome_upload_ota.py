"""``hub esphome upload NAME`` through the hub's OTA, end to end, to a simulated ESPHome node that pulls updates.

What is real: the ``hub esphome compile`` and ``hub esphome upload`` command
lines (subprocesses), the hub (storage, mqtt on the real Mosquitto, presence,
http, esphome and ota plugins), its catalogue, rollout, manifest and single-use
download link, and MQTT and HTTP between hub and node.  What is simulated:

* the compile: an ESP32 build cannot run offline (test_esphome_compile.py shows
  the message), so a stand-in ``esphome`` writes what ESPHome would, an ESP32
  application image of version 2.0.0 and its ``defines.h``;
* the node: a paho client publishing what an ESPHome node with the shared
  package publishes (birth, discovery of its ``update`` entity, states,
  ``esphome/discover/<name>`` with its project version), and doing what its
  ``update: platform: http_request`` does: poll its manifest, compare the
  version, download ``ota.path``, check the MD5, "reboot" and report the new
  version.  Its manifest URL is the one the compile built in: the hub passes
  ``-s ota_manifest_url <hub_url>/api/ota/manifest/esphome/<name>.json?key=…``
  to ESPHome (the stand-in records its command line), and the node polls that
  URL from before its first connect (the hub knows it as a placeholder) to
  after (under its MAC), as a node built from the shared package does.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import hub_esphome.plugin
import orjson
import pytest
import yaml
from esphome_messages import EsphomeNode
from esphome_testing import Device

from hub import DATA_HTTP_URL, STATUS_ONLINE
from hub.core.bootstrap import load_plugins
from hub.core.cli import build_parser
from hub.testing import create_user_and_token, wait_until

pytestmark = pytest.mark.mosquitto

OLD, NEW = "1.0.0", "2.0.0"
BUILTINS = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence", "hub.plugins.http")


def _esp32_image(version: str) -> bytes:
    """A valid ESP32 application image (the ota plugin's test helper, which esptool cross-checks)."""
    path = Path(__file__).resolve().parents[2] / "ota" / "tests" / "ota_images.py"
    spec = importlib.util.spec_from_file_location("ota_images_for_esphome", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_image(version, project="hub.upload-test", payload=48 * 1024)


def _standin_esphome(directory: Path, image: Path) -> Path:
    """``[-s KEY VALUE]… compile FILE``: ESPHome's lines for an ESP32 build, the image as ``firmware.ota.bin``, and
    ``defines.h``; its command line goes to ``argv.json`` next to it."""
    script = directory / "esphome"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, shutil, sys\n"
        f"pathlib.Path({str(directory / 'argv.json')!r}).write_text(json.dumps(sys.argv[1:]))\n"
        "file = sys.argv[-1]\n"
        "name = pathlib.Path(file).stem\n"
        "build = pathlib.Path.cwd() / '.esphome' / 'build' / name\n"
        "print('INFO ESPHome 2026.10.0')\n"
        "print(f'INFO Compiling app... Build path: {build}')\n"
        "defines = build / 'src' / 'esphome' / 'core' / 'defines.h'\n"
        "defines.parent.mkdir(parents=True, exist_ok=True)\n"
        f"defines.write_text('#define ESPHOME_PROJECT_VERSION \"{NEW}\"\\n')\n"
        "ota = build / '.pioenvs' / name / 'firmware.ota.bin'\n"
        "ota.parent.mkdir(parents=True, exist_ok=True)\n"
        f"shutil.copy({str(image)!r}, ota)\n"
        "print('INFO Build Info: config_hash=0x1a2b3c4d build_time_str=2026-01-01 00:00:00 +0000')\n"
        "print(f'INFO Created: {ota}')\n"
        "print('INFO Successfully compiled program.')\n"
    )
    script.chmod(0o755)
    return script


async def _hub_cli_in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """A ``hub`` command run in this process and loop, as ``hub.core.cli.main`` runs it (cheaper than a process)."""
    plugins = load_plugins()
    args = build_parser(plugins).parse_args(argv)
    args.plugins = plugins
    capsys.readouterr()
    code = await args.handler(args)
    out, err = capsys.readouterr()
    return int(code or 0), out, err


async def _hub_cli(*argv: str) -> tuple[int, str, str]:
    """The command line in a subprocess, without blocking the loop the hub under test runs in."""
    env = {k: v for k, v in os.environ.items() if k not in ("HUB_ESPHOME", "HUB_TOKEN")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class PullingNode:
    """The simulated node: MQTT as ESPHome publishes it, and its ``update: platform: http_request``."""

    def __init__(self, mqtt_url: str, name: str, prefix: str) -> None:
        self.esphome = EsphomeNode(name, friendly_name="Upload test", prefix=prefix)
        self.version = OLD
        self.device = Device(mqtt_url, will=self.esphome.will())
        self.downloaded = b""

    def announce(self) -> tuple[str, bytes, bool]:
        """``esphome/discover/<name>``: ESPHome's device info, with the project version this firmware runs."""
        node = self.esphome
        data = {
            "ip": "127.0.0.1",
            "name": node.name,
            "friendly_name": node.friendly_name,
            "version": node.version,
            "mac": node.mac,
            "platform": "ESP32",
            "board": node.board,
            "network": "wifi",
            "project_name": "hub.upload-test",
            "project_version": self.version,
        }
        return f"esphome/discover/{node.name}", orjson.dumps(data), True

    async def boot(self) -> None:
        """What it publishes on connecting: birth, discovery, its update entity's state, device info."""
        node = self.esphome
        await self.device.send(
            node.birth(),
            node.status_binary_sensor(),
            node.update(),
            node.update_state(self.version, self.version),
            self.announce(),
        )

    async def poll(self, http: aiohttp.ClientSession, manifest_url: str) -> dict[str, Any] | None:
        """The manifest, or None when there is none for it yet (404 ``no_firmware``: ESPHome sees no update)."""
        async with http.get(manifest_url) as response:
            if response.status == 404 and (await response.json())["error"]["code"] == "no_firmware":
                return None
            assert response.status == 200, await response.text()
            return await response.json()

    async def install(self, http: aiohttp.ClientSession, manifest: dict[str, Any]) -> None:
        """Download the build for its chip family, check the MD5 as ESPHome's http_request OTA does, reboot."""
        (build,) = [b for b in manifest["builds"] if b["chipFamily"] == "ESP32"]
        await self.device.send(self.esphome.update_state(self.version, manifest["version"]))
        async with http.get(build["ota"]["path"]) as response:
            assert response.status == 200
            self.downloaded = await response.read()
        assert hashlib.md5(self.downloaded).hexdigest() == build["ota"]["md5"]  # noqa: S324 - ESPHome's check
        self.version = manifest["version"]
        await self.boot()  # the new firmware's first connect


@pytest.fixture
async def setup(hub_factory: Any, hub_mqtt_url: str, tmp_path: Path, hub_free_port: int) -> Any:
    name = f"upload-{uuid.uuid4().hex[:6]}"
    prefix = f"hubtest-{uuid.uuid4().hex[:10]}"
    firmware = tmp_path / "firmware"
    firmware.mkdir()
    (firmware / f"{name}.yaml").write_text(
        f"substitutions:\n  name: {name}\n  friendly_name: Upload test\n  version: '{NEW}'\n\n"
        "esphome:\n  name: ${name}\n  friendly_name: ${friendly_name}\n"
        "  project:\n    name: hub.upload-test\n    version: ${version}\n\nesp32:\n  board: esp32dev\n"
    )
    (firmware / "secrets.yaml").write_text(f"hub_url: http://127.0.0.1:{hub_free_port}\n")  # as the node reaches it
    image = tmp_path / "image.bin"
    image.write_bytes(_esp32_image(NEW))
    config: dict[str, Any] = {
        "hub": {"data_dir": str(tmp_path / "data")},
        "storage": {"db_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", "flush_interval": 0.05},
        "mqtt": {"broker": hub_mqtt_url, "client_id": f"hub-upload-{uuid.uuid4().hex[:8]}", "session_expiry": 0},
        "http": {"port": hub_free_port},
        "esphome": {
            "firmware_dir": str(firmware),
            "executable": str(_standin_esphome(tmp_path, image)),
            "discovery_prefix": prefix,
        },
    }
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as env:  # the ota plugin as installed, by its entry point: never imported here
        env.setenv("HUB_LOAD_PLUGINS", "ota")
        hub = await hub_factory(config, builtins=BUILTINS, plugins=[(hub_esphome.plugin, "esphome")], entry_points=True)
    assert {"esphome", "ota", "http", "mqtt"} <= set(hub.plugins.info), hub.plugins.failed
    user = await create_user_and_token(hub)
    node = PullingNode(hub_mqtt_url, name, prefix)
    async with aiohttp.ClientSession() as http:
        yield hub, user, node, config_file, http
    node.device.clean_up()


async def test_upload_goes_through_the_ota_rollout_to_a_node_that_pulls(
    setup: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The upload that works runs as a process of its own; the compile and the refusals run in-process."""
    hub, user, node, config_file, http = setup
    name = node.esphome.name
    url = hub.data[DATA_HTTP_URL]
    await wait_until(lambda: hub.registry.get(f"esphome:{name}"), message="the node known by its file")
    code, out, err = await _hub_cli_in_process(capsys, "esphome", "compile", name, "-c", str(config_file))
    assert code == 0, out + err
    # The compile built in the node's manifest URL, by its ESPHome name, with its key; the key is in no file of the
    # firmware folder (only the build folder gets it).
    async with http.get(f"{url}/api/ota/manifest_url/esphome/{name}", headers=user.headers) as response:
        by_name = await response.json()
    manifest_url = by_name["url"]
    assert manifest_url.startswith(f"{url}/api/ota/manifest/esphome/{name}.json?key=")
    argv = json.loads((config_file.parent / "argv.json").read_text())
    assert argv == ["-s", "ota_manifest_url", manifest_url, "compile", f"{name}.yaml"]
    key = manifest_url.split("key=")[1]
    assert "key=" not in out and all(key not in p.read_text() for p in (config_file.parent / "firmware").glob("*.y*"))
    assert by_name["node_id"] == f"esphome:{name}"  # known by its file only: a placeholder
    assert await node.poll(http, manifest_url) is None  # its manifest answers: nothing released to it yet
    build = json.loads((config_file.parent / "firmware" / ".esphome" / "build" / name / "hub-build.json").read_text())
    assert (build["version"], Path(build["binary"]).name) == (NEW, "firmware.ota.bin")

    # Before the node ever connected, the hub refuses: it must be flashed over USB first.
    upload = ("esphome", "upload", name, "-c", str(config_file), "--token", user.token)
    code, _out, err = await _hub_cli_in_process(capsys, *upload)
    assert code == 1 and "has never connected to the hub" in err and "--device" in err

    await node.boot()
    registered = await wait_until(
        lambda: (n := hub.registry.get(node.esphome.node_id)) and n.firmware_version == OLD and n,
        message=f"the node registered, running {OLD}",
    )
    await wait_until(lambda: registered.status == STATUS_ONLINE)
    # The same URL now means the node under its MAC (the placeholder was folded into it).
    await wait_until(lambda: hub.registry.get(f"esphome:{name}") is None, message="the placeholder folded")
    async with http.get(f"{url}/api/ota/manifest_url/esphome/{name}", headers=user.headers) as response:
        assert await response.json() == {**by_name, "node_id": registered.node_id}
    async with http.get(manifest_url.replace(key, "0" * len(key))) as response:
        assert response.status == 404 and (await response.json())["error"]["code"] == "manifest_not_found"

    code, out, err = await _hub_cli(*upload)
    assert code == 0, out + err
    assert f"Firmware {NEW} ({build['size']} bytes) is in the hub's catalogue" in out
    rollout_id = out.split("Rollout ", 1)[1].split(" ", 1)[0]

    # Until its turn comes the node's manifest has nothing (it runs 1.0.0, which is not in the catalogue); then its
    # next poll offers 2.0.0 (ESPHome's update entity then says an update is available).
    manifest = await wait_until(
        lambda: _offered(node, http, manifest_url), message=f"the manifest offering {NEW}", interval=0.1
    )
    assert manifest["name"] == "hub.upload-test"
    await node.install(http, manifest)
    assert hashlib.sha256(node.downloaded).hexdigest() == build["sha256"]  # exactly the compiled bytes
    assert node.downloaded == Path(build["binary"]).read_bytes()

    # The node reports 2.0.0 after its reboot: the rollout counts it done, and the hub says it is up to date.
    await wait_until(lambda: registered.firmware_version == NEW, message=f"the node reporting {NEW}")

    async def finished() -> dict[str, Any] | None:
        async with http.get(f"{url}/api/ota/rollouts/{rollout_id}", headers=user.headers) as response:
            rollout = await response.json()
        return rollout if rollout["status"] == "completed" else None

    rollout = await wait_until(finished, message="the rollout completed", interval=0.1)
    assert [(n["node_id"], n["status"]) for n in rollout["nodes"]] == [(registered.node_id, "succeeded")]
    async with http.get(f"{url}/api/esphome/nodes/{name}", headers=user.headers) as response:
        row = await response.json()
    assert (row["seen"], row["running_version"], row["up_to_date"]) == (True, NEW, True)

    # The download link was single-use: spent once the node reported its new version (the ota plugin records that
    # on its own time, so wait for it).
    async def link_status() -> int:
        async with http.get(manifest["builds"][0]["ota"]["path"]) as response:
            await response.read()
            return response.status

    await wait_until(lambda: _is(410, link_status()), message="the download link spent", interval=0.1)

    # Uploading the same build again is refused: the node runs that version already.
    code, _out, err = await _hub_cli_in_process(capsys, *upload)
    assert code == 1 and f"already runs version {NEW}" in err


async def _offered(node: PullingNode, http: aiohttp.ClientSession, manifest_url: str) -> dict[str, Any] | None:
    manifest = await node.poll(http, manifest_url)
    return manifest if manifest is not None and manifest["version"] == NEW else None


async def _is(expected: int, status: Any) -> bool:
    return await status == expected
