"""``hub esphome new|validate|list`` as a user runs them (the hub's own ``main``, a config file in tmp_path)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import hub_esphome.plugin
import pytest
import yaml
from esphome_messages import EsphomeNode
from esphome_testing import feed
from hub_esphome.firmware import read_node

from hub.core.cli import main
from hub.testing import services_required

FIRMWARE = Path(__file__).resolve().parents[3] / "firmware" / "esphome"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    """A config file whose esphome: firmware_dir: is a copy of firmware/esphome/ (no secrets.yaml)."""
    firmware = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, firmware, ignore=shutil.ignore_patterns("secrets.yaml", ".esphome"))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "hub": {"data_dir": str(tmp_path / "data")},
                "storage": {"db_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"},
                "esphome": {"firmware_dir": str(firmware), "executable": os.environ.get("HUB_ESPHOME")},
            }
        )
    )
    return config, firmware


def test_new_writes_a_node_from_a_template(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, firmware = setup
    assert (
        main(
            [
                "esphome",
                "new",
                "kitchen-relay",
                "--template",
                "relay",
                "--friendly-name",
                "Kitchen: relays",
                "-c",
                str(config),
            ]
        )
        == 0
    )
    written = read_node(firmware / "kitchen-relay.yaml")
    assert (written.name, written.friendly_name) == ("kitchen-relay", "Kitchen: relays")
    assert "platform: gpio" in written.path.read_text(encoding="utf-8")
    assert main(["esphome", "new", "kitchen-relay", "-c", str(config)]) == 1
    assert main(["esphome", "new", "Kitchen_Relay", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "exists already" in err and "is not an ESPHome node name" in err


def test_validate_says_what_is_missing(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, _firmware = setup
    data = yaml.safe_load(config.read_text())
    data["esphome"]["executable"] = "/nonexistent/esphome"
    config.write_text(yaml.safe_dump(data))
    assert main(["esphome", "validate", "-c", str(config)]) == 1
    assert "scripts/esphome-env" in capsys.readouterr().err


@pytest.mark.esphome
def test_validate_runs_esphome_config_on_the_nodes(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _firmware = setup
    if not os.environ.get("HUB_ESPHOME"):
        if services_required():
            pytest.fail("HUB_ESPHOME is not set (HUB_REQUIRE_SERVICES=1): run scripts/esphome-env")
        pytest.skip("HUB_ESPHOME is not set: run scripts/esphome-env and set it to what it prints")
    assert main(["esphome", "validate", "climate-1", "-c", str(config)]) == 1  # no secrets.yaml
    assert "secrets.yaml is missing" in capsys.readouterr().err
    assert main(["esphome", "validate", "--all", "--example-secrets", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "==> esphome config climate.yaml" in out and "3 node file(s) valid" in out
    assert main(["esphome", "validate", "nope", "-c", str(config)]) == 1


async def test_list_shows_which_defined_nodes_the_hub_knows(
    setup: tuple[Path, Path], hub_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _firmware = setup
    data = yaml.safe_load(config.read_text())
    hub = await hub_factory(
        {"hub": data["hub"], "storage": data["storage"]},
        builtins=("hub.plugins.storage",),
        plugins=[(hub_esphome.plugin, "esphome")],
    )
    node = EsphomeNode("climate-1", friendly_name="Climate 1")
    feed(hub, node.device_info())
    await hub.async_stop()

    code = await _main_in_thread(["esphome", "list", "--json", "-c", str(config)])
    assert code == 0
    rows = {row["file"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["climate.yaml"]["node_id"] == node.node_id and rows["climate.yaml"]["seen"] is True
    assert rows["climate.yaml"]["running_version"] == "2026.10.0"
    assert rows["climate.yaml"]["compiled"] is None and rows["climate.yaml"]["up_to_date"] is None
    relay = rows["relay.yaml"]
    assert (relay["name"], relay["node_id"], relay["seen"], relay["status"]) == (
        "relay-1",
        "esphome:relay-1",
        False,
        "unknown",
    )


async def _main_in_thread(argv: list[str]) -> int:
    """``main`` runs its own event loop (asyncio.run), so it cannot run on the test's."""
    return await asyncio.to_thread(main, argv)
