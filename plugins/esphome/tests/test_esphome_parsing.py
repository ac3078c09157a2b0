"""Pure parsing: abbreviations and ``~``, discovery topics, value templates, state payloads, device info."""

from __future__ import annotations

import pytest
from hub_esphome.abbreviations import ABBREVIATIONS, DEVICE_ABBREVIATIONS, ORIGIN_ABBREVIATIONS, expand
from hub_esphome.contract import Invalid, discovery_filters, node_id_from_identifier, parse_discovery_topic
from hub_esphome.device_info import parse_device_info
from hub_esphome.discovery import EntityConfig, parse_config
from hub_esphome.states import INVALID, converter_for
from hub_esphome.templates import MISSING, RAW, UnsupportedTemplate, ValueTemplate, parse_template


def test_abbreviations_expand_at_every_level_home_assistant_does() -> None:
    payload = {
        "~": "home/kitchen",
        "stat_t": "~/state",
        "cmd_t": "~/set",
        "json_attr_t": "attrs/~",
        "unit_of_meas": "°C",
        "dev": {"ids": ["abc"], "mf": "Acme", "mdl": "T1", "sw": "1.2", "cns": [["mac", "AA:BB:CC:DD:EE:FF"]]},
        "o": {"name": "bridge", "sw": "2.0", "url": "https://example.com"},
        "avty": [{"t": "~/avail", "pl_avail": "up", "pl_not_avail": "down", "val_tpl": "{{ value_json.s }}"}],
        "custom_key": 1,
    }
    assert expand(payload) == {
        "state_topic": "home/kitchen/state",
        "command_topic": "home/kitchen/set",
        "json_attributes_topic": "attrs/home/kitchen",
        "unit_of_measurement": "°C",
        "device": {
            "identifiers": ["abc"],
            "manufacturer": "Acme",
            "model": "T1",
            "sw_version": "1.2",
            "connections": [["mac", "AA:BB:CC:DD:EE:FF"]],
        },
        "origin": {"name": "bridge", "sw_version": "2.0", "support_url": "https://example.com"},
        "availability": [
            {
                "topic": "home/kitchen/avail",
                "payload_available": "up",
                "payload_not_available": "down",
                "value_template": "{{ value_json.s }}",
            }
        ],
        "custom_key": 1,
    }
    assert payload["stat_t"] == "~/state"  # the input is left alone


def test_components_get_the_topic_base_and_their_own_abbreviations() -> None:
    components = {"t": {"p": "sensor", "stat_t": "~/t"}, "u": {"~": "x", "p": "switch", "stat_t": "~/u"}}
    assert expand({"~": "dev1", "cmps": components})["components"] == {
        "t": {"platform": "sensor", "state_topic": "dev1/t"},
        "u": {"platform": "switch", "state_topic": "x/u"},  # a component's own base wins
    }


def test_the_tables_hold_home_assistants_entries() -> None:
    assert len(ABBREVIATIONS) > 290 and all(isinstance(v, str) for v in ABBREVIATIONS.values())
    for abbreviation, full in {
        "stat_t": "state_topic",
        "avty_t": "availability_topic",
        "pl_avail": "payload_available",
        "pl_not_avail": "payload_not_available",
        "unit_of_meas": "unit_of_measurement",
        "dev_cla": "device_class",
        "stat_cla": "state_class",
        "exp_aft": "expire_after",
        "ent_cat": "entity_category",
        "val_tpl": "value_template",
        "uniq_id": "unique_id",
        "cmps": "components",
        "p": "platform",
        "sug_dsp_prc": "suggested_display_precision",
        "pl_inst": "payload_install",
        "curr_hum_t": "current_humidity_topic",
    }.items():
        assert ABBREVIATIONS[abbreviation] == full
    assert DEVICE_ABBREVIATIONS["cns"] == "connections" and DEVICE_ABBREVIATIONS["sn"] == "serial_number"
    assert ORIGIN_ABBREVIATIONS["url"] == "support_url"
    assert len(set(ABBREVIATIONS.values())) == len(ABBREVIATIONS)  # no two abbreviations for one key


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("homeassistant/sensor/climate-1/temperature/config", ("sensor", "climate-1", "temperature")),
        ("homeassistant/binary_sensor/door/config", ("binary_sensor", None, "door")),
        ("homeassistant/device/kitchen/config", ("device", None, "kitchen")),
    ],
)
def test_discovery_topics(topic: str, expected: tuple[str, str | None, str]) -> None:
    parsed = parse_discovery_topic(topic, 1)
    assert (parsed.component, parsed.node_id, parsed.object_id) == expected


@pytest.mark.parametrize(
    "topic",
    [
        "homeassistant/Sensor/x/config",
        "homeassistant/sensor/a b/config",
        "homeassistant/sensor/x.y/config",
        "homeassistant/device/a/b/config",
    ],
)
def test_bad_discovery_topics(topic: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_discovery_topic(topic, 1)
    assert err.value.reason == "bad_topic"


def test_filters_and_prefix_levels() -> None:
    assert discovery_filters("ha/test") == ("ha/test/+/+/config", "ha/test/+/+/+/config")
    assert parse_discovery_topic("ha/test/sensor/x/config", 2).object_id == "x"


def test_node_ids_from_identifiers() -> None:
    assert node_id_from_identifier("AABBCCDDEEFF") == "aa:bb:cc:dd:ee:ff"
    assert node_id_from_identifier("zigbee2mqtt_0x00158d0001dc126a") == "zigbee2mqtt_0x00158d0001dc126a"
    assert node_id_from_identifier("a/b c?") == "a_b_c_"
    with pytest.raises(Invalid):
        node_id_from_identifier("///")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (None, RAW),
        ("", RAW),
        ("{{ value }}", RAW),
        ("{{value}}", RAW),
        ("{{ value_json }}", ValueTemplate(json=True)),
        ("{{ value_json.temperature }}", ValueTemplate(json=True, path=("temperature",))),
        ("{{ value_json.a.b }}", ValueTemplate(json=True, path=("a", "b"))),
        ("{{ value_json['DS18B20'].Temperature }}", ValueTemplate(json=True, path=("DS18B20", "Temperature"))),
        ('{{ value_json["x y"][0] }}', ValueTemplate(json=True, path=("x y", 0))),
    ],
)
def test_supported_templates(template: str | None, expected: ValueTemplate) -> None:
    assert parse_template(template) == expected


@pytest.mark.parametrize(
    "template",
    [
        "{{ value_json.x | float }}",
        "{{ value_json.x * 10 }}",
        "{% if value == 'ON' %}on{% endif %}",
        "{{ states('sensor.x') }}",
        "{{ value.x }}",
        "value_json.x",
        "{{ " + "a." * 200 + " }}",
    ],
)
def test_unsupported_templates(template: str) -> None:
    with pytest.raises(UnsupportedTemplate):
        parse_template(template)


def test_template_extraction() -> None:
    template = parse_template("{{ value_json.a[1].b }}")
    assert template.extract({"a": [0, {"b": 5}]}) == 5
    assert template.extract({"a": [0]}) is MISSING
    assert template.extract({"a": {"1": {}}}) is MISSING
    assert template.extract([1]) is MISSING


def _convert(platform: str, value: object, **kwargs: object) -> object:
    return converter_for(EntityConfig("d", platform, "o", None, **kwargs))(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("platform", "payload", "expected"),
    [
        ("sensor", "21.4", 21.4),
        ("sensor", "1013", 1013.0),
        ("sensor", "-3.50", -3.5),
        ("sensor", "nan", None),
        ("sensor", "-nan", None),
        ("sensor", "None", None),
        ("sensor", "unknown", None),
        ("sensor", "inf", None),
        ("sensor", 7, 7.0),
        ("sensor", "2026-01-01T12:00:00+00:00", "2026-01-01T12:00:00+00:00"),
        ("number", "12.5", 12.5),
        ("binary_sensor", "ON", True),
        ("binary_sensor", "OFF", False),
        ("binary_sensor", "None", None),
        ("switch", "ON", True),
        ("text_sensor", "hello world", "hello world"),
        ("text_sensor", "x" * 300, "x" * 255),
        ("select", "Auto", "Auto"),
        ("update", {"installed_version": "1.0", "latest_version": "1.1", "title": "N", "x": 1}, None),
    ],
)
def test_states_as_devices_send_them(platform: str, payload: object, expected: object) -> None:
    if platform == "update":
        expected = {"installed_version": "1.0", "latest_version": "1.1", "title": "N"}
    assert _convert(platform, payload) == expected


@pytest.mark.parametrize(
    ("platform", "payload"),
    [("number", "warm"), ("binary_sensor", "MAYBE"), ("update", "1.0.0"), ("text_sensor", {"a": 1})],
)
def test_states_a_platform_cannot_hold(platform: str, payload: object) -> None:
    assert _convert(platform, payload) is INVALID


def test_binary_payloads_from_the_config() -> None:
    assert _convert("binary_sensor", "open", payload_on="open", payload_off="closed") is True
    assert _convert("binary_sensor", False, payload_on=False, payload_off=True) is True  # zigbee2mqtt contact
    assert _convert("binary_sensor", 1, payload_on=True, payload_off=False) is INVALID
    light = EntityConfig("d", "light", "o", None, extra={"schema": "json"})
    assert converter_for(light)({"state": "ON", "brightness": 255}) is True


def test_device_info() -> None:
    info = parse_device_info(
        "esphome/discover/node-1",
        {
            "ip": "192.168.1.5",
            "ip1": "fe80::1",
            "name": "node-1",
            "friendly_name": "Node 1",
            "port": 6053,
            "version": "2026.10.0",
            "mac": "aabbccddeeff",
            "platform": "ESP32",
            "board": "esp32dev",
            "network": "wifi",
            "project_name": "acme.climate",
            "project_version": "1.4.2",
        },
    )
    assert (info.node_id, info.name, info.friendly_name, info.firmware_version) == (
        "aa:bb:cc:dd:ee:ff",
        "node-1",
        "Node 1",
        "1.4.2",
    )
    assert info.attributes["ip"] == "192.168.1.5" and info.attributes["ip_addresses"] == ["fe80::1"]
    assert info.attributes["api_port"] == 6053 and info.attributes["esphome_version"] == "2026.10.0"
    for bad in ([], {"name": "node-1"}, {"name": "other", "mac": "aabbccddeeff"}):
        with pytest.raises(Invalid):
            parse_device_info("esphome/discover/node-1", bad)


@pytest.mark.parametrize("mode", [["all"], {"mode": "all"}, 1, "every"])
def test_an_availability_mode_that_is_no_mode_is_a_bad_config(mode: object) -> None:
    # Found by tests/fuzz: a list or an object here raised TypeError (unhashable) into the router.
    topic = parse_discovery_topic("homeassistant/sensor/node/t/config", 1)
    config = {"state_topic": "node/t/state", "device": {"identifiers": ["node"]}, "availability_mode": mode}
    with pytest.raises(Invalid, match="availability_mode") as raised:
        parse_config(topic, config)
    assert raised.value.reason == "bad_discovery_config"
