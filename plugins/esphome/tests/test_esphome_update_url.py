"""The update manifest URL a compile builds into a node (``esphome -s ota_manifest_url URL compile …``).

A real hub (storage, http, ota, esphome); ESPHome is the stand-in of
:func:`esphome_testing.standin_esphome`, which records its command line, except
for one real ``esphome -s … config`` of a shipped node file (base.yaml uses the
substitution as given).  The whole round trip, compile to a node polling that
URL, is in test_esphome_upload_ota.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import hub_esphome.plugin
import orjson
import pytest
from esphome_testing import esphome_executable, host_firmware, standin_esphome
from hub_esphome.firmware import FirmwareError
from hub_esphome.runner import run_esphome
from hub_esphome.runtime import DATA_PROVISIONING
from hub_esphome.update_url import NO_OTA, substitution_arguments

from hub import Hub
from hub.testing import wait_until

FIRMWARE = Path(__file__).resolve().parents[3] / "firmware" / "esphome"
BUILTINS = ("hub.plugins.storage", "hub.plugins.http")


async def _hub(hub_factory: Any, tmp_path: Path, *, ota: dict[str, Any] | None, hub_url: str | None) -> Hub:
    firmware = host_firmware(tmp_path / "firmware")
    if hub_url is not None:
        (firmware / "secrets.yaml").write_text(f"hub_url: {hub_url}\n")
    config: dict[str, Any] = {
        "hub": {"data_dir": str(tmp_path / "data")},
        "storage": {"db_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"},
        "http": {"port": 0},
        "esphome": {"firmware_dir": str(firmware), "executable": str(standin_esphome(tmp_path, tmp_path / "gate"))},
    }
    if ota is not None:
        config["ota"] = ota
    (tmp_path / "gate").touch()  # the stand-in's compile runs straight through
    with pytest.MonkeyPatch.context() as env:  # the ota plugin as installed, by its entry point: never imported here
        env.setenv("HUB_LOAD_PLUGINS", "ota" if ota is not None else "")
        return await hub_factory(
            config, builtins=BUILTINS, plugins=[(hub_esphome.plugin, "esphome")], entry_points=ota is not None
        )


async def test_a_dashboard_compile_passes_the_nodes_manifest_url(hub_factory: Any, tmp_path: Path) -> None:
    hub = await _hub(hub_factory, tmp_path, ota={}, hub_url="http://192.168.1.10:8124")
    provisioning = hub.data[DATA_PROVISIONING]
    node_file = provisioning.defined.defined["host-node"]
    job = provisioning.jobs.start("compile", node_file)  # what POST /api/esphome/nodes/host-node/compile starts
    await wait_until(lambda: job.status in ("succeeded", "failed"), message="the compile job finished")
    assert job.status == "succeeded", job.problem
    url = (await hub.services.call("ota", "manifest_url", {"kind": "esphome", "name": "host-node"}))["url"]
    assert url is None  # no ota: public_url: the address came from secrets.yaml's hub_url
    expected = (
        await hub.services.call(
            "ota", "manifest_url", {"kind": "esphome", "name": "host-node", "base_url": "http://192.168.1.10:8124"}
        )
    )["url"]
    assert expected.startswith("http://192.168.1.10:8124/api/ota/manifest/esphome/host-node.json?key=")
    argv = orjson.loads((tmp_path / "argv.json").read_bytes())
    assert argv == ["-s", "ota_manifest_url", expected, "compile", "host-node.yaml"]
    key = expected.split("key=")[1]
    assert not any(key in line for line in job.lines)  # the job's log (shown on the dashboard) has no key


async def test_without_the_hubs_address_a_compile_says_what_to_set(hub_factory: Any, tmp_path: Path) -> None:
    hub = await _hub(hub_factory, tmp_path, ota={}, hub_url=None)
    directory = tmp_path / "firmware"
    lines: list[str] = []
    assert await substitution_arguments(hub.services, directory, "host-node", lines.append) == []
    assert "hub_url in" in lines[0] and "ota: public_url:" in lines[0]
    (directory / "secrets.yaml").write_text("hub_url: not a url\n")
    with pytest.raises(FirmwareError, match="hub_url in .* must be the hub's address"):
        await substitution_arguments(hub.services, directory, "host-node", lines.append)


async def test_public_url_is_the_fallback_and_no_ota_plugin_is_a_note(hub_factory: Any, tmp_path: Path) -> None:
    hub = await _hub(hub_factory, tmp_path / "a", ota={"public_url": "http://hub.lan:8124"}, hub_url=None)
    lines: list[str] = []
    arguments = await substitution_arguments(hub.services, tmp_path / "a" / "firmware", "host-node", lines.append)
    assert arguments[:2] == ["-s", "ota_manifest_url"]
    assert arguments[2].startswith("http://hub.lan:8124/api/ota/manifest/esphome/host-node.json?key=")
    without = await _hub(hub_factory, tmp_path / "b", ota=None, hub_url="http://192.168.1.10:8124")
    assert await substitution_arguments(without.services, tmp_path / "b" / "firmware", "x", lines.append) == []
    assert lines[-1] == NO_OTA


async def test_the_shipped_package_takes_the_url_from_the_command_line(tmp_path: Path) -> None:
    """Real ESPHome: ``esphome -s ota_manifest_url URL config relay.yaml`` puts the URL in the update entity."""
    executable = esphome_executable()
    firmware = tmp_path / "esphome"
    shutil.copytree(FIRMWARE, firmware, ignore=shutil.ignore_patterns("secrets.yaml", ".esphome"))
    shutil.copy(firmware / "secrets.example.yaml", firmware / "secrets.yaml")
    url = "http://192.168.1.10:8124/api/ota/manifest/esphome/relay-1.json?key=" + "ab" * 32
    lines: list[str] = []
    result = await run_esphome(
        executable, ["-s", "ota_manifest_url", url, "config", "relay.yaml"], cwd=firmware, on_line=lines.append
    )
    assert result.ok, "\n".join(lines[-40:])
    assert f"source: {url}" in [line.strip() for line in lines]
