"""Nodes defined in firmware/esphome/ are known before they first connect, and stay one node when they do."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import hub_esphome.plugin
import pytest
from esphome_messages import EsphomeNode
from esphome_testing import feed
from hub_esphome.runtime import DATA_PROVISIONING

from hub import STATUS_UNKNOWN, Hub

FIRMWARE = Path(__file__).resolve().parents[3] / "firmware" / "esphome"


@pytest.fixture
def firmware(tmp_path: Path) -> Path:
    """A copy of firmware/esphome/; climate.yaml gets an area, json_commands.yaml a real MAC."""
    copy = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, copy, ignore=shutil.ignore_patterns("secrets.yaml", ".esphome"))
    climate = copy / "climate.yaml"
    climate.write_text(climate.read_text().replace("packages:", "esphome:\n  area: Greenhouse 2\n\npackages:", 1))
    json_node = copy / "json_commands.yaml"
    json_node.write_text(json_node.read_text().replace('mac: "000000000000"', 'mac: "24:6F:28:AA:00:07"'))
    return copy


async def _hub(hub_factory: Any, tmp_path: Path, firmware: Path) -> Hub:
    return await hub_factory(
        {
            "storage": {"db_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"},
            "esphome": {"firmware_dir": str(firmware)},
            "hub": {"data_dir": str(tmp_path / "data")},
        },
        builtins=("hub.plugins.storage",),
        plugins=[(hub_esphome.plugin, "esphome")],
    )


async def test_a_defined_node_is_known_before_it_connects(hub_factory: Any, tmp_path: Path, firmware: Path) -> None:
    hub = await _hub(hub_factory, tmp_path, firmware)
    climate = hub.registry.get("esphome:climate-1")
    assert climate is not None
    assert (climate.name, climate.area, climate.status, climate.last_seen) == (
        "Climate 1",
        "Greenhouse 2",
        STATUS_UNKNOWN,
        None,
    )
    assert climate.attributes["esphome_name"] == "climate-1"
    assert climate.attributes["esphome_yaml"] == "climate.yaml"
    relay = hub.registry.get("esphome:relay-1")
    assert relay is not None and relay.name == "Relay 1" and relay.attributes["esphome_yaml"] == "relay.yaml"
    # A file that states the board's MAC defines the node under its real id at once.
    json_node = hub.registry.get("24:6f:28:aa:00:07")
    assert json_node is not None and json_node.attributes["esphome_yaml"] == "json_commands.yaml"
    assert hub.registry.get("esphome:json-node-1") is None


async def test_it_is_the_same_node_when_it_connects(hub_factory: Any, tmp_path: Path, firmware: Path) -> None:
    hub = await _hub(hub_factory, tmp_path, firmware)
    hub.registry.update_node(hub.registry.get("esphome:climate-1"), tags=["beta"], description="north wall")
    node = EsphomeNode("climate-1", friendly_name="Climate 1")
    feed(hub, *node.climate_node())  # discovery configs first, then esphome/discover/climate-1

    assert hub.registry.get("esphome:climate-1") is None
    connected = hub.registry.get(node.node_id)
    assert connected is not None
    assert (connected.area, connected.tags, connected.description) == ("Greenhouse 2", ["beta"], "north wall")
    assert connected.attributes["esphome_yaml"] == "climate.yaml"
    assert "sensor.temperature" in connected.entities
    assert [n.node_id for n in hub.registry if n.attributes.get("esphome_name") == "climate-1"] == [node.node_id]

    # A restarted hub finds the node by its name and defines no placeholder again.
    await hub.async_stop()
    again = await _hub(hub_factory, tmp_path, firmware)
    assert again.registry.get("esphome:climate-1") is None
    assert again.registry.get(node.node_id).attributes["esphome_yaml"] == "climate.yaml"


async def test_a_node_with_a_known_mac_is_never_a_second_node(hub_factory: Any, tmp_path: Path, firmware: Path) -> None:
    hub = await _hub(hub_factory, tmp_path, firmware)
    before = len(hub.registry)
    node = EsphomeNode("json-node-1", mac="246f28aa0007", friendly_name="JSON node 1")
    feed(hub, node.device_info(), node.switch("relay", "Relay"))
    assert len(hub.registry) == before
    assert "switch.relay" in hub.registry.get("24:6f:28:aa:00:07").entities


async def test_the_folder_is_followed(hub_factory: Any, tmp_path: Path, firmware: Path) -> None:
    hub = await _hub(hub_factory, tmp_path, firmware)
    provisioning = hub.data[DATA_PROVISIONING]
    node = EsphomeNode("relay-1")
    feed(hub, node.device_info())
    (firmware / "relay.yaml").unlink()
    (firmware / "climate.yaml").unlink()
    shutil.copy(FIRMWARE / "climate.yaml", firmware / "attic.yaml")
    (firmware / "attic.yaml").write_text((firmware / "attic.yaml").read_text().replace("climate-1", "attic"))
    provisioning.sync()
    assert hub.registry.get("esphome:climate-1") is None  # never seen, its file is gone: gone
    assert hub.registry.get(node.node_id).attributes["esphome_yaml"] is None  # it exists: it stays
    assert hub.registry.get("esphome:attic").attributes["esphome_yaml"] == "attic.yaml"
