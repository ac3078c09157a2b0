"""Decoding of devices/{MAC}/data: registration, entities, attributes, timestamps, dedupe (no broker needed)."""

from __future__ import annotations

import logging
from typing import Any

import hub_esp32_node.plugin
import orjson
import pytest
from esp32_testing import NOW, Recorder
from hub_esp32_node.entities import describe

from hub import (
    EVENT_AVAILABILITY_REPORTED,
    EVENT_ENTITY_REGISTERED,
    EVENT_NODE_REGISTERED,
    EVENT_NODE_UPDATED,
    EVENT_STATE_REPORTED,
    Hub,
)
from hub.testing import FakeClock

MAC = "AA:BB:CC:DD:EE:FF"
NODE_ID = "aa:bb:cc:dd:ee:ff"
EXAMPLE = {
    "timestamp": 1677610000,
    "temperature": 25.4,
    "humidity": 65,
    "status": "online",
    "uptime": 12345,
    "free_heap": 123456,
    "wifi_rssi": -45,
    "mac_address": MAC,
}


def send(hub: Hub, payload: Any, mac: str = MAC, leaf: str = "data") -> None:
    """Deliver one message the way a transport does."""
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    assert hub.messages.dispatch(f"devices/{mac}/{leaf}", data, False) == 1


def reported(events: Recorder) -> list[dict[str, Any]]:
    return events.of(EVENT_STATE_REPORTED)


async def test_example_telemetry_registers_node_entities_and_attributes(hub: Hub, events: Recorder) -> None:
    send(hub, EXAMPLE)

    node = hub.registry.get(NODE_ID)
    assert node is not None and node.name == "esp32-ddeeff"
    assert node.last_seen == NOW
    assert set(node.entities) == {"temperature", "humidity", "uptime", "free_heap", "wifi_rssi"}
    temperature = node.entities["temperature"]
    assert (temperature.platform, temperature.unit, temperature.device_class, temperature.state_class) == (
        "sensor",
        "°C",
        "temperature",
        "measurement",
    )
    assert temperature.state == 25.4
    uptime = node.entities["uptime"]
    assert (uptime.unit, uptime.device_class, uptime.state_class) == ("s", "duration", "total_increasing")
    assert (node.entities["humidity"].unit, node.entities["humidity"].device_class) == ("%", "humidity")
    assert (node.entities["free_heap"].unit, node.entities["free_heap"].device_class) == ("B", "data_size")
    assert (node.entities["wifi_rssi"].unit, node.entities["wifi_rssi"].device_class) == ("dBm", "signal_strength")
    assert node.attributes == {"topic_mac": MAC}  # "status" is reserved: ignored
    [report] = reported(events)
    assert report == {
        "node_id": NODE_ID,
        "ts": 1677610000.0,
        "states": {"temperature": 25.4, "humidity": 65, "uptime": 12345, "free_heap": 123456, "wifi_rssi": -45},
        "dedupe": None,
    }
    assert len(events.of(EVENT_NODE_REGISTERED)) == 1


async def test_repeated_messages_register_nothing_new(hub: Hub, events: Recorder, hub_clock: FakeClock) -> None:
    send(hub, EXAMPLE)
    hub_clock.now += 5
    send(hub, {**EXAMPLE, "temperature": 25.6, "timestamp": 1677610005})

    assert len(events.of(EVENT_NODE_REGISTERED)) == 1
    assert len(events.of(EVENT_ENTITY_REGISTERED)) == 5
    # topic_mac was set by the first message ("status" is reserved); the second changes no attribute.
    assert len(events.of(EVENT_NODE_UPDATED)) == 1
    assert hub.registry.get(NODE_ID).entities["temperature"].state == 25.6  # type: ignore[union-attr]
    assert hub.registry.get(NODE_ID).last_seen == NOW + 5  # type: ignore[union-attr]


async def test_registration_is_logged_once_at_info(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hub_esp32_node"):
        send(hub, EXAMPLE)
        send(hub, EXAMPLE)
        send(hub, b"online", leaf="status")
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and NODE_ID in infos[0].getMessage() and "esp32-ddeeff" in infos[0].getMessage()


@pytest.mark.parametrize("spelling", ["AA:BB:CC:DD:EE:FF", "aa-bb-cc-dd-ee-ff", "AABBCCDDEEFF", "aabb.ccdd.eeff"])
async def test_mac_spellings_map_to_one_node_and_the_spelling_is_remembered(hub: Hub, spelling: str) -> None:
    send(hub, {"temperature": 20}, mac="aa:bb:cc:dd:ee:ff")
    send(hub, {"temperature": 21, "mac_address": "aabbccddeeff"}, mac=spelling)

    assert [node.node_id for node in hub.registry] == [NODE_ID]
    node = hub.registry.get(NODE_ID)
    assert node is not None and node.entities["temperature"].state == 21
    assert node.attributes["topic_mac"] == spelling


async def test_strings_bools_and_nested_values_are_attributes_numbers_are_entities(hub: Hub, events: Recorder) -> None:
    send(
        hub,
        {
            "temperature": 20.5,
            "relay": True,
            "mode": "eco",
            "wifi": {"ssid": "home", "ch": 6},
            "tags": ["a", "b"],
            "nothing": None,
            "count": 3,
        },
    )

    node = hub.registry.get(NODE_ID)
    assert node is not None
    assert set(node.entities) == {"temperature", "count"}
    assert node.attributes == {
        "relay": True,
        "mode": "eco",
        "wifi": {"ssid": "home", "ch": 6},
        "tags": ["a", "b"],
        "topic_mac": MAC,
    }
    updates = events.of(EVENT_NODE_UPDATED)
    send(hub, {"temperature": 20.5, "relay": False, "mode": "eco"})
    later = events.of(EVENT_NODE_UPDATED)[len(updates) :]
    assert later == [{"node_id": NODE_ID, "changes": {"attributes": {"relay": False}}}]


async def test_firmware_version_keys_set_the_node_firmware(hub: Hub, events: Recorder) -> None:
    send(hub, {"firmware_version": "1.4.2", "temperature": 1})
    assert hub.registry.get(NODE_ID).firmware_version == "1.4.2"  # type: ignore[union-attr]
    send(hub, {"version": 2.1, "temperature": 1})
    assert hub.registry.get(NODE_ID).firmware_version == "2.1"  # type: ignore[union-attr]
    send(hub, {"fw_version": "2.1", "temperature": 1})
    firmware_updates = [u for u in events.of(EVENT_NODE_UPDATED) if "firmware_version" in u["changes"]]
    assert len(firmware_updates) == 2
    node = hub.registry.get(NODE_ID)
    assert node is not None and "version" not in node.entities and "version" not in node.attributes


async def test_reserved_keys_are_neither_entities_nor_attributes(hub: Hub) -> None:
    send(hub, {"ts": 1677610000, "seq": 7, "message_id": "m-1", "mac_address": MAC, "topic_mac": "x", "temperature": 3})
    node = hub.registry.get(NODE_ID)
    assert node is not None and set(node.entities) == {"temperature"}
    assert node.attributes == {"topic_mac": MAC}


async def test_only_attributes_is_proof_of_life_without_readings(hub: Hub, events: Recorder) -> None:
    send(hub, {"status": "online", "ip": "10.0.0.7"})
    assert reported(events) == []
    assert events.of(EVENT_AVAILABILITY_REPORTED) == [{"node_id": NODE_ID, "online": True, "ts": NOW}]


async def test_huge_numbers_become_floats_and_bools_never_become_readings(hub: Hub, events: Recorder) -> None:
    send(hub, {"big": 18446744073709551615, "bigger": 1e300, "neg": -9223372036854775808, "flag": False})
    [report] = reported(events)
    assert report["states"] == {"big": 1.8446744073709552e19, "bigger": 1e300, "neg": -9223372036854775808}
    assert type(report["states"]["big"]) is float and type(report["states"]["neg"]) is int
    assert hub.registry.get(NODE_ID).attributes["flag"] is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "unit", "device_class", "state_class"),
    [
        ("pressure", "hPa", "atmospheric_pressure", "measurement"),
        ("voltage", "V", "voltage", "measurement"),
        ("battery_voltage", "V", "voltage", "measurement"),
        ("current", "A", "current", "measurement"),
        ("power", "W", "power", "measurement"),
        ("energy", "kWh", "energy", "total_increasing"),
        ("illuminance", "lx", "illuminance", "measurement"),
        ("battery", "%", "battery", "measurement"),
        ("co2", "ppm", "carbon_dioxide", "measurement"),
        ("temperature_2", "°C", "temperature", "measurement"),
        ("outdoor_humidity", "%", "humidity", "measurement"),
        ("loop_count", None, None, "measurement"),
    ],
)
async def test_entity_inference(
    hub: Hub, key: str, unit: str | None, device_class: str | None, state_class: str
) -> None:
    send(hub, {key: 1.5})
    entity = hub.registry.get(NODE_ID).entities[key]  # type: ignore[union-attr]
    assert (entity.unit, entity.device_class, entity.state_class) == (unit, device_class, state_class)


def test_entity_names_for_awkward_keys() -> None:
    assert describe("wifi_rssi").name == "Wi-Fi RSSI"
    assert describe("co2").name == "CO₂"
    assert describe("room_co2").name is None  # the registry derives "Room co2"


# --- timestamps -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1677610000, 1677610000.0),
        (1677610000.25, 1677610000.25),
        (1677610000123, 1677610000.123),
        ("2023-02-28T18:46:40Z", 1677610000.0),
        ("2023-02-28T18:46:40.5Z", 1677610000.5),
        ("2023-02-28T19:46:40+01:00", 1677610000.0),
        ("2023-02-28 18:46:40", 1677610000.0),
        ("2023-02-28T18:46:40", 1677610000.0),
        ("20230228T184640Z", 1677610000.0),
    ],
)
async def test_accepted_timestamps(hub: Hub, events: Recorder, value: Any, expected: float) -> None:
    send(hub, {"timestamp": value, "temperature": 1})
    assert reported(events)[0]["ts"] == pytest.approx(expected, abs=1e-6)
    assert hub.metrics.value("esp32_timestamp_fallbacks", reason="unparsable") == 0
    assert hub.metrics.value("esp32_timestamp_fallbacks", reason="out_of_range") == 0


@pytest.mark.parametrize("key", ["ts", "time"])
async def test_timestamp_aliases(hub: Hub, events: Recorder, key: str) -> None:
    send(hub, {key: 1677610000, "temperature": 1})
    assert reported(events)[0]["ts"] == 1677610000.0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("14:30:25", "unparsable"),
        ("2023-02-28", "unparsable"),
        ("yesterday", "unparsable"),
        (True, "unparsable"),
        ({"s": 1}, "unparsable"),
        (0, "out_of_range"),
        (12345, "out_of_range"),
        (1400000000, "out_of_range"),
        (NOW + 2 * 86400, "out_of_range"),
        ((NOW + 2 * 86400) * 1000, "out_of_range"),
        ("2099-01-01T00:00:00Z", "out_of_range"),
        (-5, "out_of_range"),
    ],
)
async def test_unusable_timestamps_fall_back_to_receive_time_and_are_counted(
    hub: Hub, events: Recorder, value: Any, reason: str
) -> None:
    send(hub, {"timestamp": value, "temperature": 1})
    [report] = reported(events)
    assert report["ts"] == NOW and report["states"] == {"temperature": 1}
    assert hub.metrics.value("esp32_timestamp_fallbacks", reason=reason) == 1
    assert hub.metrics.value("messages_rejected", reason="bad_key") == 0


async def test_missing_timestamp_is_receive_time_and_not_a_fallback(hub: Hub, events: Recorder) -> None:
    send(hub, {"temperature": 1})
    assert reported(events)[0]["ts"] == NOW
    assert hub.metrics.value("esp32_timestamp_fallbacks", reason="unparsable") == 0


async def test_timestamp_up_to_a_day_ahead_is_trusted(hub: Hub, events: Recorder) -> None:
    send(hub, {"timestamp": NOW + 86000, "temperature": 1})
    assert reported(events)[0]["ts"] == NOW + 86000


# --- dedupe ---------------------------------------------------------------------------------
async def test_dedupe_is_stable_for_identical_bytes_and_differs_otherwise(hub: Hub, events: Recorder) -> None:
    message = b'{"seq":1,"temperature":21.5}'
    send(hub, message)
    send(hub, message)  # a broker redelivery
    send(hub, b'{"seq":1,"temperature":21.6}')  # rebooted node restarting its seq
    send(hub, message, mac="11:22:33:44:55:66")  # another node, same bytes
    send(hub, b'{"message_id":"abc","temperature":1}')
    send(hub, b'{"temperature":1}')
    first, redelivered, rebooted, other_node, by_message_id, without = (r["dedupe"] for r in reported(events))
    assert first == redelivered
    assert len({first, rebooted, other_node, by_message_id}) == 4
    assert all(isinstance(d, int) and -(2**63) <= d < 2**63 for d in (first, rebooted, other_node, by_message_id))
    assert without is None


async def test_dedupe_survives_a_hub_restart(hub_factory: Any, events: Recorder, hub: Hub) -> None:
    message = b'{"seq":42,"temperature":21.5}'
    send(hub, message)
    other = await hub_factory(builtins=(), plugins=[(hub_esp32_node.plugin, "esp32_node")])
    again = Recorder()
    other.bus.listen(EVENT_STATE_REPORTED, again)
    send(other, message)
    assert again.events[0].data["dedupe"] == reported(events)[0]["dedupe"]


async def test_removed_node_registers_again_on_its_next_message(hub: Hub, events: Recorder) -> None:
    send(hub, {"temperature": 1})
    assert hub.registry.remove(NODE_ID)
    send(hub, {"temperature": 2})
    assert len(events.of(EVENT_NODE_REGISTERED)) == 2
    node = hub.registry.get(NODE_ID)
    assert node is not None and node.entities["temperature"].state == 2 and node.attributes["topic_mac"] == MAC
