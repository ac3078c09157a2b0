"""The registry's limits on MQTT discovery: refused nodes and entities are counted, the rest of the device works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hub_esphome.plugin
from esphome_messages import EsphomeNode
from esphome_testing import feed

from hub import Hub


async def limited_hub(hub_factory: Any, clock: Any, tmp_path: Path, **limits: int) -> Hub:
    """A hub with only this plugin and these limits; no node files (they would be nodes too)."""
    config = {"hub": {"limits": limits}, "esphome": {"firmware_dir": str(tmp_path)}}
    hub = await hub_factory(config, builtins=(), plugins=[(hub_esphome.plugin, "esphome")], clock=clock)
    assert "esphome" in hub.plugins.info, hub.plugins.failed
    assert len(hub.registry) == 0
    return hub


def rejected(hub: Hub, reason: str) -> float:
    return hub.metrics.value("messages_rejected", reason=reason)


async def test_entities_past_the_limit_are_refused_and_the_others_read(hub_factory, clock, tmp_path) -> None:
    hub = await limited_hub(hub_factory, clock, tmp_path, max_entities_per_node=2)
    node = EsphomeNode("climate-1")
    feed(
        hub,
        node.sensor("temperature", "Temperature", "°C", "temperature"),
        node.sensor("humidity", "Humidity", "%", "humidity"),
        node.sensor("pressure", "Pressure", "hPa", "pressure"),
        node.switch("relay", "Relay"),
        node.state("sensor", "temperature", "21.5"),
        node.state("sensor", "pressure", "1000"),
    )
    registered = hub.registry.get(node.node_id)
    assert set(registered.entities) == {"sensor.temperature", "sensor.humidity"}
    assert registered.entities["sensor.temperature"].state == 21.5
    assert rejected(hub, "entity_limit") == 2
    assert "max_entities_per_node 2" in hub.metrics.rejection_examples["entity_limit"]["detail"]
    assert hub.messages.handler_errors == 0


async def test_new_devices_past_max_nodes_are_refused(hub_factory, clock, tmp_path) -> None:
    hub = await limited_hub(hub_factory, clock, tmp_path, max_nodes=2)
    nodes = [EsphomeNode(f"node-{i}") for i in range(4)]
    for node in nodes:
        feed(hub, node.sensor("temperature", "Temperature", "°C", "temperature"), node.device_info())
    assert [n.node_id in hub.registry for n in nodes] == [True, True, False, False]
    assert rejected(hub, "node_limit") == 4  # each refused device's config and its device info
    assert hub.messages.handler_errors == 0


async def test_device_attributes_past_the_limit_are_left_out(hub_factory, clock, tmp_path) -> None:
    hub = await limited_hub(hub_factory, clock, tmp_path, max_attribute_bytes=100)
    node = EsphomeNode("climate-1", board="b" * 300)
    feed(hub, node.sensor("temperature", "Temperature", "°C", "temperature"), node.device_info())
    registered = hub.registry.get(node.node_id)
    assert "sensor.temperature" in registered.entities and registered.attributes["esphome_name"] == "climate-1"
    assert "board" not in registered.attributes and "model" not in registered.attributes
    assert rejected(hub, "attribute_limit") == 2
    assert hub.messages.handler_errors == 0
