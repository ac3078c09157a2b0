"""Discovery, states and availability as an ESPHome node sends them, dispatched as the mqtt transport would."""

from __future__ import annotations

import orjson
from esphome_messages import EsphomeNode, fnv1_hash
from esphome_testing import Recorder, feed
from hub_esphome.plugin import DATA_INGEST

from hub import EVENT_AVAILABILITY_REPORTED, EVENT_ENTITY_REMOVED, EVENT_STATE_CHANGED, EVENT_STATE_REPORTED, Hub
from hub.testing import FakeClock


def climate(**kwargs: str) -> EsphomeNode:
    return EsphomeNode("climate-1", friendly_name="Climate 1", **kwargs)


async def test_a_climate_node_appears_with_its_entities_and_device_info(hub: Hub) -> None:
    node = climate()
    feed(hub, *node.climate_node())
    registered = hub.registry.get(node.node_id)
    assert registered is not None
    assert registered.name == "Climate 1"
    assert registered.firmware_version == "2026.10.0"
    assert {k: registered.attributes[k] for k in ("manufacturer", "model", "ip", "board", "esphome_name")} == {
        "manufacturer": "Espressif",
        "model": "esp32dev",
        "ip": "127.0.0.1",
        "board": "esp32dev",
        "esphome_name": "climate-1",
    }
    entities = registered.entities
    assert set(entities) == {
        "sensor.temperature",
        "sensor.humidity",
        "binary_sensor.status",
        "switch.relay",
        "button.restart",
        "update.firmware",
    }
    temperature = entities["sensor.temperature"]
    assert (temperature.platform, temperature.name, temperature.unit) == ("sensor", "Temperature", "°C")
    assert (temperature.device_class, temperature.state_class) == ("temperature", "measurement")
    assert temperature.attributes["unique_id"] == f"{node.mac}-sensor-{fnv1_hash('Temperature'):08x}"
    assert temperature.attributes["state_topic"] == "climate-1/sensor/temperature/state"
    assert temperature.attributes["availability"] == [
        {"topic": "climate-1/status", "payload_available": "online", "payload_not_available": "offline"}
    ]
    assert temperature.attributes["suggested_display_precision"] == 1
    assert entities["button.restart"].attributes["entity_category"] == "config"
    assert entities["switch.relay"].attributes["command_topic"] == "climate-1/switch/relay/command"
    assert entities["button.restart"].state is None


async def test_retained_states_are_restored_not_fresh(hub: Hub, events: Recorder, clock: FakeClock) -> None:
    node = climate()
    feed(hub, *node.climate_node())
    registered = hub.registry.get(node.node_id)
    assert registered is not None
    temperature = registered.entities["sensor.temperature"]
    assert temperature.state == 21.4 and temperature.attributes["restored"] is True
    assert registered.entities["switch.relay"].state is False
    assert events.of(EVENT_STATE_REPORTED) == []  # nothing stored, no proof of life
    assert {e["key"] for e in events.of(EVENT_STATE_CHANGED)} >= {"sensor.temperature", "switch.relay"}

    clock.advance(5)
    feed(hub, node.state("sensor", "temperature", "21.6"))
    assert events.of(EVENT_STATE_REPORTED) == [
        {"node_id": node.node_id, "ts": clock.now, "states": {"sensor.temperature": 21.6}, "dedupe": None}
    ]
    assert "restored" not in temperature.attributes
    assert registered.last_seen == clock.now


async def test_status_birth_and_will_are_availability_not_telemetry(hub: Hub, events: Recorder) -> None:
    node = climate()
    feed(hub, *node.climate_node())
    feed(hub, node.birth())  # the broker replays the retained birth when the hub subscribes <node>/status
    status = hub.registry.get(node.node_id).entities["binary_sensor.status"]  # type: ignore[union-attr]
    assert status.state is True and status.attributes["restored"] is True
    feed(hub, (node.status_topic, b"offline", False))  # the broker publishes the Will
    feed(hub, (node.status_topic, b"online", False))
    assert [a["online"] for a in events.of(EVENT_AVAILABILITY_REPORTED)] == [True, False, True]
    assert events.of(EVENT_STATE_REPORTED) == []
    assert status.state is True and "restored" not in status.attributes


async def test_a_retained_state_reaches_an_entity_whatever_came_first(hub: Hub, events: Recorder) -> None:
    """The status binary sensor reads <node>/status, which the first entity's availability subscribed: the broker
    replays the retained birth once, before or after the sensor's config arrives; either way it shows restored."""
    for birth_first in (True, False):
        node = climate(mac=f"0000000000{int(birth_first):02x}")
        feed(hub, node.sensor("temperature", "Temperature", "°C", "temperature"))  # subscribes <node>/status
        if birth_first:
            feed(hub, node.birth())  # the broker's replay, taken before the status sensor exists
        feed(hub, node.status_binary_sensor())  # the topic is subscribed already: nothing is replayed for it
        if not birth_first:
            feed(hub, node.birth())
        status = hub.registry.get(node.node_id).entities["binary_sensor.status"]  # type: ignore[union-attr]
        assert (status.state, status.attributes.get("restored")) == (True, True), birth_first
    assert events.of(EVENT_STATE_REPORTED) == []


async def test_states_as_esphome_sends_them(hub: Hub, events: Recorder) -> None:
    node = climate()
    feed(hub, *node.climate_node())
    feed(
        hub,
        node.state("sensor", "temperature", "nan"),
        node.state("sensor", "humidity", "None"),
        node.state("switch", "relay", "ON"),
        node.update_state("1.0.0", "1.1.0"),
    )
    states = [e["states"] for e in events.of(EVENT_STATE_REPORTED)]
    assert states == [
        {"sensor.temperature": None},
        {"sensor.humidity": None},
        {"switch.relay": True},
        {"update.firmware": {"installed_version": "1.0.0", "latest_version": "1.1.0", "title": "Climate 1"}},
    ]


async def test_an_empty_retained_config_removes_the_entity(hub: Hub, events: Recorder) -> None:
    node = climate()
    feed(hub, *node.climate_node())
    assert "climate-1/switch/relay/state" in hub.messages.filters()
    feed(hub, node.remove("switch", "relay"))
    registered = hub.registry.get(node.node_id)
    assert registered is not None and "switch.relay" not in registered.entities
    assert events.of(EVENT_ENTITY_REMOVED) == [{"node_id": node.node_id, "key": "switch.relay"}]
    assert "climate-1/switch/relay/state" not in hub.messages.filters()
    feed(hub, node.state("switch", "relay", "ON"))  # a late state of the removed entity is ignored
    assert events.of(EVENT_STATE_REPORTED) == []
    feed(hub, node.remove("switch", "relay"))  # withdrawing twice is harmless
    feed(hub, node.switch("relay", "Relay"))  # and it may come back
    assert "switch.relay" in registered.entities


async def test_each_topic_is_subscribed_once_however_many_entities_share_it(hub: Hub, monkeypatch) -> None:
    calls: list[str] = []
    subscribe = hub.messages.subscribe

    def counting(topic_filter, handler, *, qos=1):
        calls.append(topic_filter)
        return subscribe(topic_filter, handler, qos=qos)

    monkeypatch.setattr(hub.messages, "subscribe", counting)
    node = climate()
    feed(hub, *node.climate_node(), *node.climate_node())  # and everything twice, as on a reconnect
    assert sorted(calls) == sorted(
        [
            "climate-1/status",  # availability of all six entities, and the status binary sensor's state
            "climate-1/sensor/temperature/state",
            "climate-1/sensor/humidity/state",
            "climate-1/switch/relay/state",
            "climate-1/update/firmware/state",
        ]
    )
    assert hub.metrics.value("esphome_topics") == 5


async def test_a_config_that_changes_replaces_the_entity_and_keeps_its_state(hub: Hub, events: Recorder) -> None:
    node = climate()
    feed(hub, *node.climate_node())
    topic, payload, retained = node.sensor("temperature", "Temperature", "°F", "temperature")
    feed(hub, (topic, payload, retained))
    entity = hub.registry.get(node.node_id).entities["sensor.temperature"]  # type: ignore[union-attr]
    assert entity.unit == "°F" and entity.state == 21.4
    assert [e["key"] for e in events.of(EVENT_ENTITY_REMOVED)] == ["sensor.temperature"]


async def test_collisions_are_counted_and_the_first_owner_keeps_the_entity(hub: Hub) -> None:
    node = climate()
    feed(hub, node.sensor("temperature", "Temperature", "°C", "temperature"))
    topic, payload, _ = node.sensor("temperature", "Temperature", "°C", "temperature")
    # Another discovery topic claiming the same unique_id (a copied config, or legacy ids of two devices)
    feed(hub, (topic.replace("/climate-1/", "/other/"), payload, True))
    assert hub.metrics.value("messages_rejected", reason="discovery_collision") == 1
    assert hub.registry.get(node.node_id).entities["sensor.temperature"].attributes["discovery_id"] == topic  # type: ignore[union-attr]


async def test_bad_input_is_a_counted_rejection(hub: Hub) -> None:
    node = climate()
    feed(
        hub,
        ("homeassistant/sensor/climate-1/temperature/config", b"{not json", True),
        ("homeassistant/sensor/climate-1/temperature/config", b"[1, 2]", True),
        ("homeassistant/sensor/climate-1/temperature/config", b"x" * 70_000, True),
        ("homeassistant/sensor/climate 1/temperature/config", b"{}", True),
        ("homeassistant/sensor/temperature/config", b'{"name": "no device"}', True),
        ("homeassistant/sensor/climate-1/t/config", b'{"stat_t": "a/+/b", "dev": {"ids": "x"}}', True),
        ("homeassistant/device/climate-1/config", b'{"dev": {"ids": "x"}}', True),
        ("esphome/discover/climate-1", b'{"name": "climate-1", "mac": "nope"}', True),
        ("esphome/discover/climate-1", b"\xff\xfe", True),
    )
    feed(hub, *node.climate_node())
    feed(hub, node.state("sensor", "temperature", "warm"), node.state("switch", "relay", "MAYBE"))
    feed(hub, node.state("sensor", "temperature", b"\xff"), node.state("sensor", "humidity", b"1" * 70_000))
    rejected = {
        reason: hub.metrics.value("messages_rejected", reason=reason)
        for reason in (
            "not_json",
            "not_object",
            "too_large",
            "bad_topic",
            "no_device",
            "bad_discovery_config",
            "bad_device_info",
            "bad_state",
        )
    }
    assert rejected == {
        "not_json": 2,
        "not_object": 1,
        "too_large": 2,
        "bad_topic": 1,
        "no_device": 1,
        "bad_discovery_config": 2,
        "bad_device_info": 1,
        "bad_state": 2,
    }
    # "warm" is kept as text: a sensor may be an enum; MAYBE is no switch state
    assert hub.registry.get(node.node_id).entities["sensor.temperature"].state == "warm"  # type: ignore[union-attr]


async def test_expire_after_sets_the_state_unknown(hub: Hub, clock: FakeClock, events: Recorder) -> None:
    node = climate()
    feed(hub, node.sensor("temperature", "Temperature", "°C", "temperature", expire_after=60))
    feed(hub, node.state("sensor", "temperature", "20.0"))
    entity = hub.registry.get(node.node_id).entities["sensor.temperature"]  # type: ignore[union-attr]
    assert entity.attributes["expire_after"] == 60.0
    ingest = hub.data[DATA_INGEST]
    clock.advance(59)
    assert ingest.routes.expire(clock.now) == 0
    clock.advance(2)
    assert ingest.routes.expire(clock.now) == 1
    assert entity.state is None and entity.attributes["expired"] is True
    assert events.of(EVENT_STATE_CHANGED)[-1]["new_state"] is None
    feed(hub, node.state("sensor", "temperature", "20.5"))
    assert entity.state == 20.5 and "expired" not in entity.attributes


async def test_device_discovery_with_components_and_topic_base(hub: Hub) -> None:
    config = {
        "dev": {"ids": "ea334450945afc", "name": "Kitchen", "mf": "Bla electronics", "mdl": "xya", "sw": "1.0"},
        "o": {"name": "bla2mqtt", "sw": "2.1", "url": "https://bla2mqtt.example.com/support"},
        "~": "kitchen/sensor",
        "cmps": {
            "temp": {"p": "sensor", "dev_cla": "temperature", "unit_of_meas": "°C", "val_tpl": "{{ value_json.t }}"},
            "hum": {"p": "sensor", "dev_cla": "humidity", "unit_of_meas": "%", "val_tpl": "{{ value_json['h'] }}"},
            "door": {"p": "binary_sensor", "stat_t": "~/door", "pl_on": "open", "pl_off": "closed"},
        },
        "stat_t": "~/state",
        "avty_t": "~/available",
        "qos": 1,
    }
    feed(hub, ("homeassistant/device/kitchen/config", orjson.dumps(config), True))
    node = hub.registry.get("ea334450945afc")
    assert node is not None and node.name == "Kitchen" and node.firmware_version == "1.0"
    assert set(node.entities) == {"sensor.temp", "sensor.hum", "binary_sensor.door"}
    assert node.entities["sensor.temp"].attributes["state_topic"] == "kitchen/sensor/state"
    assert node.entities["binary_sensor.door"].attributes["state_topic"] == "kitchen/sensor/door"
    feed(hub, ("kitchen/sensor/state", b'{"t": 21.5, "h": 40}', False), ("kitchen/sensor/door", b"open", False))
    assert (node.entities["sensor.temp"].state, node.entities["sensor.hum"].state) == (21.5, 40.0)
    assert node.entities["binary_sensor.door"].state is True

    del config["cmps"]["hum"]  # a component left out of the device config is withdrawn
    config["cmps"]["door"] = {"p": "binary_sensor"}  # and so is one reduced to its platform
    feed(hub, ("homeassistant/device/kitchen/config", orjson.dumps(config), True))
    assert set(node.entities) == {"sensor.temp"}
    feed(hub, ("homeassistant/device/kitchen/config", b"", True))
    assert node.entities == {}


async def test_zigbee2mqtt_device_with_templates_and_json_availability(hub: Hub, events: Recorder) -> None:
    device = {
        "identifiers": ["zigbee2mqtt_0x00158d0001dc126a"],
        "name": "living_room_sensor",
        "model": "Aqara temperature, humidity and pressure sensor (WSDCGQ11LM)",
        "manufacturer": "Aqara",
        "via_device": "zigbee2mqtt_bridge_0x00124b0022813302",
    }
    availability = [{"topic": "zigbee2mqtt/bridge/state", "value_template": "{{ value_json.state }}"}]
    for object_id, unit, device_class in (("temperature", "°C", "temperature"), ("humidity", "%", "humidity")):
        config = {
            "availability": availability,
            "device": device,
            "device_class": device_class,
            "enabled_by_default": True,
            "object_id": f"living_room_sensor_{object_id}",
            "origin": {"name": "Zigbee2MQTT", "sw": "1.40.2", "url": "https://www.zigbee2mqtt.io"},
            "state_class": "measurement",
            "state_topic": "zigbee2mqtt/living_room_sensor",
            "unique_id": f"0x00158d0001dc126a_{object_id}_zigbee2mqtt",
            "unit_of_measurement": unit,
            "value_template": f"{{{{ value_json.{object_id} }}}}",
        }
        feed(hub, (f"homeassistant/sensor/0x00158d0001dc126a/{object_id}/config", orjson.dumps(config), True))
    node = hub.registry.get("zigbee2mqtt_0x00158d0001dc126a")
    assert node is not None and set(node.entities) == {"sensor.temperature", "sensor.humidity"}
    assert node.attributes["via_device"] == "zigbee2mqtt_bridge_0x00124b0022813302"
    feed(hub, ("zigbee2mqtt/bridge/state", b'{"state":"online"}', True))
    feed(hub, ("zigbee2mqtt/living_room_sensor", b'{"battery":97,"humidity":55.2,"temperature":22.1}', False))
    assert events.of(EVENT_STATE_REPORTED)[-1]["states"] == {"sensor.temperature": 22.1, "sensor.humidity": 55.2}
    feed(hub, ("zigbee2mqtt/bridge/state", b'{"state":"offline"}', False))
    assert [a["online"] for a in events.of(EVENT_AVAILABILITY_REPORTED)] == [True, False]


async def test_an_unsupported_template_is_flagged_not_evaluated(hub: Hub, events: Recorder) -> None:
    config = {
        "dev": {"ids": "tasmota_ABC123", "name": "Plug"},
        "stat_t": "tele/plug/SENSOR",
        "val_tpl": "{{ value_json.ENERGY.Power | float * 2 }}",
        "unit_of_meas": "W",
    }
    feed(hub, ("homeassistant/sensor/ABC123_power/config", orjson.dumps(config), True))
    entity = hub.registry.get("tasmota_ABC123").entities["sensor.ABC123_power"]  # type: ignore[union-attr]
    assert entity.attributes["unsupported_template"] is True
    assert "tele/plug/SENSOR" not in hub.messages.filters()


async def test_availability_mode_all(hub: Hub, events: Recorder) -> None:
    config = {
        "dev": {"ids": "dev1"},
        "stat_t": "dev1/state",
        "avty": [{"t": "dev1/link"}, {"t": "bridge/link", "pl_avail": "up", "pl_not_avail": "down"}],
        "avty_mode": "all",
    }
    feed(hub, ("homeassistant/sensor/dev1/x/config", orjson.dumps(config), True))
    feed(hub, ("dev1/link", b"online", False))  # the bridge is not known yet: undecided
    feed(hub, ("bridge/link", b"up", False))
    feed(hub, ("bridge/link", b"down", False))
    feed(hub, ("bridge/link", b"sideways", False))  # neither payload: ignored
    assert [a["online"] for a in events.of(EVENT_AVAILABILITY_REPORTED)] == [True, False]


async def test_a_removed_node_forgets_its_entities_and_can_come_back(hub: Hub) -> None:
    node = climate()
    feed(hub, *node.climate_node())
    assert hub.registry.remove(node.node_id)
    assert "climate-1/sensor/temperature/state" not in hub.messages.filters()
    feed(hub, node.state("sensor", "temperature", "20.0"))
    assert hub.registry.get(node.node_id) is None
    feed(hub, *node.climate_node())
    assert len(hub.registry.get(node.node_id).entities) == 6  # type: ignore[union-attr]
