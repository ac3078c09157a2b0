"""A native API node's registry side (NativeDevice) in a real hub with presence, fed real aioesphomeapi models.

What a connection hands over (device info, the entity list, states, connect and
disconnect) is played here without a socket; the real node's test
(test_esphome_native_node.py) covers the connection itself.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aioesphomeapi as api
import hub_esphome.plugin
import orjson
import pytest
from esphome_messages import EsphomeNode
from esphome_testing import Recorder, feed
from hub_esphome.native.device import NativeDevice

from hub import (
    EVENT_STATE_REPORTED,
    MATCH_ALL,
    REASON_LWT,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Hub,
    LimitExceeded,
    Rejections,
)
from hub.testing import wait_until

MAC = "24:6f:28:aa:00:01"
INFO = api.DeviceInfo(name="relay-1", friendly_name="Relay board", mac_address=MAC.upper(), esphome_version="2026.10.0")
TEMPERATURE = api.SensorInfo(object_id="temperature", key=1, name="Temperature", unit_of_measurement="°C")
RELAY = api.SwitchInfo(object_id="relay", key=2, name="Relay")


@pytest.fixture
async def hub(hub_factory: Any) -> Hub:
    return await hub_factory(builtins=("hub.plugins.presence",), plugins=[(hub_esphome.plugin, "esphome")])


def native_device(hub: Hub, address: str = "10.0.0.5:6053") -> NativeDevice:
    return NativeDevice(hub.registry, hub.clock, address, Rejections(hub.metrics, logging.getLogger("test")))


@pytest.fixture
def events(hub: Hub) -> Recorder:
    recorder = Recorder()
    hub.bus.listen(MATCH_ALL, recorder)
    return recorder


async def test_connect_registers_node_and_entities_and_brings_the_node_online(hub: Hub, events: Recorder) -> None:
    device = native_device(hub)
    node = device.connected(INFO, [TEMPERATURE, RELAY])
    assert (node.node_id, node.name, node.firmware_version) == (MAC, "Relay board", "2026.10.0")
    assert node.attributes["native_api"] == "10.0.0.5:6053" and node.attributes["source"] == "native_api"
    assert set(node.entities) == {"sensor.temperature", "switch.relay"}
    assert node.status == STATUS_ONLINE

    # The burst of current states after subscribing is one reading; later states are readings of their own.
    device.on_state(api.SensorState(key=1, state=21.5))
    device.on_state(api.SwitchState(key=2, state=False))
    device.on_state(api.SensorState(key=99, state=1.0))  # a key the listing did not have: ignored
    await wait_until(lambda: events.of(EVENT_STATE_REPORTED))
    device.on_state(api.SensorState(key=1, state=21.7))
    await wait_until(lambda: len(events.of(EVENT_STATE_REPORTED)) == 2)
    assert [e["states"] for e in events.of(EVENT_STATE_REPORTED)] == [
        {"sensor.temperature": 21.5, "switch.relay": False},
        {"sensor.temperature": 21.7},
    ]

    # The connection drops: offline at once, as an MQTT node's Last Will makes it.
    device.disconnected()
    assert (node.status, node.status_reason) == (STATUS_OFFLINE, REASON_LWT)
    device.connected(INFO, [TEMPERATURE, RELAY])
    assert node.status == STATUS_ONLINE
    assert len(events.of("node_registered")) == 1 and len(events.of("entity_registered")) == 2


async def test_new_firmware_changes_and_removes_entities_keeping_states(hub: Hub, events: Recorder) -> None:
    device = native_device(hub)
    node = device.connected(INFO, [TEMPERATURE, RELAY])
    device.on_state(api.SensorState(key=1, state=21.5))
    await wait_until(lambda: node.entities["sensor.temperature"].state == 21.5)
    fahrenheit = api.SensorInfo(object_id="temperature", key=1, name="Temperature", unit_of_measurement="°F")
    device.connected(INFO, [fahrenheit])
    assert set(node.entities) == {"sensor.temperature"}
    assert node.entities["sensor.temperature"].unit == "°F"
    assert node.entities["sensor.temperature"].state == 21.5  # carried over to the replaced entity
    assert [e["key"] for e in events.of("entity_removed")] == ["switch.relay", "sensor.temperature"]
    device.connected(INFO, [fahrenheit])  # the same listing again (every reconnect) changes nothing
    assert len(events.of("entity_removed")) == 2


async def test_an_entity_mqtt_discovery_registered_keeps_its_description_and_gets_native_states(hub: Hub) -> None:
    """A board with both api: and mqtt: is one node: MQTT's entity stays MQTT's, the native API feeds its state."""
    mqtt = EsphomeNode("relay-1", mac=MAC.replace(":", ""))
    feed(hub, mqtt.switch("relay", "Relay"))
    node = hub.registry.get(MAC)
    assert node is not None and "command_topic" in node.entities["switch.relay"].attributes
    device = native_device(hub)
    assert device.connected(INFO, [RELAY]) is node
    entity = node.entities["switch.relay"]
    assert "discovery_id" in entity.attributes and "native_key" not in entity.attributes
    device.on_state(api.SwitchState(key=2, state=True))
    await wait_until(lambda: entity.state is True)
    assert device.entities["switch.relay"].native_key == 2  # commands still find its native key


async def test_a_node_removed_by_an_operator_is_not_written_to_until_it_connects_again(
    hub: Hub, events: Recorder
) -> None:
    device = native_device(hub)
    node = device.connected(INFO, [TEMPERATURE])
    hub.registry.remove(MAC)
    seen = len(events.events)
    device.on_state(api.SensorState(key=1, state=20.0))
    device.flush()
    device.alive()
    device.disconnected()
    assert events.events[seen:] == []
    assert hub.registry.get(MAC) is None and node.entities["sensor.temperature"].state is None


async def test_an_announced_node_with_an_encrypted_api_and_no_key_is_not_connected(hub_factory: Any) -> None:
    hub = await hub_factory(
        {"esphome": {"native_api": {"auto_connect": True}}}, builtins=(), plugins=[(hub_esphome.plugin, "esphome")]
    )
    native = hub.data[hub_esphome.plugin.DATA_NATIVE]
    announce = {"ip": "127.0.0.1", "name": "relay-1", "mac": MAC, "port": 6053, "api_encryption": "Noise_NNpsk0"}
    feed(hub, ("esphome/discover/relay-1", orjson.dumps(announce), True))
    feed(hub, ("esphome/discover/other", orjson.dumps({**announce, "name": "other", "ip": "other.lan"}), True))
    feed(hub, ("esphome/discover/nope", orjson.dumps({"ip": "127.0.0.1", "name": "nope", "mac": MAC}), True))
    assert native.connections() == []  # no key; a name, not an IP; no API port


async def test_what_the_limits_refuse_is_counted_and_the_rest_kept(hub_factory: Any, tmp_path: Path) -> None:
    config = {
        "hub": {"limits": {"max_nodes": 1, "max_entities_per_node": 1}},
        "esphome": {"firmware_dir": str(tmp_path)},
    }
    hub = await hub_factory(config, builtins=(), plugins=[(hub_esphome.plugin, "esphome")])
    device = native_device(hub)
    node = device.connected(INFO, [TEMPERATURE, RELAY])
    assert set(node.entities) == {"sensor.temperature"}  # the relay is past max_entities_per_node
    assert hub.metrics.value("messages_rejected", reason="entity_limit") == 1
    device.on_state(api.SwitchState(key=2, state=True))  # the refused entity's states are ignored
    device.on_state(api.SensorState(key=1, state=20.0))
    device.flush()
    assert node.entities["sensor.temperature"].state == 20.0
    other = api.DeviceInfo(name="relay-2", mac_address="24:6F:28:AA:00:02", esphome_version="2026.10.0")
    with pytest.raises(LimitExceeded):  # the connection drops it and tries again later
        native_device(hub, "10.0.0.6:6053").connected(other, [TEMPERATURE])
    assert hub.metrics.value("messages_rejected", reason="node_limit") == 1
    assert "24:6f:28:aa:00:02" not in hub.registry
