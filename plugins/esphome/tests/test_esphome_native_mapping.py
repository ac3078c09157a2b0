"""aioesphomeapi's models → registry terms, and the ``native_api:`` config: pure functions on real model objects."""

from __future__ import annotations

import math

import aioesphomeapi as api
import pytest
import voluptuous as vol
from hub_esphome.native.config import NODE_SCHEMA, SCHEMA, encryption_key, host
from hub_esphome.native.mapping import NO_STATE, entity_spec, node_fields, platform_of, state_value

KEY = "S4mYtZvlc8PueNnYqiOk8ZlGUTbunohWrs+GUHDJLHc="  # 32 random bytes, base64: the shape, not a secret


def test_device_info_keys_the_node_by_its_mac_and_takes_the_project_version_first() -> None:
    info = api.DeviceInfo(
        name="relay-1",
        friendly_name="Relay board",
        mac_address="24:6F:28:AA:00:01",
        esphome_version="2026.10.0",
        model="esp32dev",
        manufacturer="Espressif",
        compilation_time="Nov 29 2026, 12:00:00",
    )
    fields = node_fields(info)
    assert (fields.node_id, fields.name, fields.firmware_version) == ("24:6f:28:aa:00:01", "Relay board", "2026.10.0")
    assert fields.attributes == {
        "esphome_name": "relay-1",
        "friendly_name": "Relay board",
        "esphome_version": "2026.10.0",
        "board": "esp32dev",
        "manufacturer": "Espressif",
        "compilation_time": "Nov 29 2026, 12:00:00",
    }
    project = api.DeviceInfo(name="x", mac_address="246f28aa0001", esphome_version="2026.10.0", project_version="1.4")
    assert node_fields(project).firmware_version == "1.4"
    assert node_fields(project).name == "x"
    with pytest.raises(ValueError):
        node_fields(api.DeviceInfo(name="x", mac_address="not a mac"))


def test_entities_get_the_keys_units_and_classes_mqtt_discovery_gives_them() -> None:
    sensor = api.SensorInfo(
        object_id="temperature",
        key=7,
        name="Temperature",
        unit_of_measurement="°C",
        device_class="temperature",
        state_class=api.SensorStateClass.MEASUREMENT,
        accuracy_decimals=1,
        entity_category=api.EntityCategory.DIAGNOSTIC,
        icon="mdi:thermometer",
    )
    spec = entity_spec(sensor, "Climate")
    assert (spec.key, spec.platform, spec.name, spec.unit, spec.device_class, spec.state_class) == (
        "sensor.temperature",
        "sensor",
        "Temperature",
        "°C",
        "temperature",
        "measurement",
    )
    assert spec.attributes == {
        "native_key": 7,
        "object_id": "temperature",
        "icon": "mdi:thermometer",
        "entity_category": "diagnostic",
        "suggested_display_precision": 1,
    }
    assert (spec.native_key, spec.device_id) == (7, 0)
    # An entity without a name of its own is named after its device, as ESPHome and Home Assistant name it.
    unnamed = entity_spec(api.SwitchInfo(object_id="relay_board", key=3, name="", assumed_state=True), "Relay board")
    assert (unnamed.key, unnamed.name, unnamed.attributes["assumed_state"]) == (
        "switch.relay_board",
        "Relay board",
        True,
    )


def test_numbers_selects_and_sub_devices_keep_what_commands_and_the_api_need() -> None:
    number = api.NumberInfo(
        object_id="level", key=1, name="Level", min_value=0, max_value=100, step=0.5, mode=api.NumberMode.SLIDER
    )
    spec = entity_spec(number, "")
    assert {k: spec.attributes[k] for k in ("min", "max", "step", "mode")} == {
        "min": 0.0,
        "max": 100.0,
        "step": 0.5,
        "mode": "slider",
    }
    unbounded = entity_spec(api.NumberInfo(object_id="x", key=2, name="X", min_value=math.nan), "")
    assert "min" not in unbounded.attributes
    select = entity_spec(api.SelectInfo(object_id="mode", key=4, name="Mode", options=["eco", "boost"]), "")
    assert select.attributes["options"] == ["eco", "boost"]
    sub = entity_spec(api.SensorInfo(object_id="t", key=5, name="T", device_id=9, disabled_by_default=True), "")
    assert (sub.device_id, sub.attributes["enabled_by_default"]) == (9, False)


@pytest.mark.parametrize(
    ("info", "platform"),
    [
        (api.BinarySensorInfo(), "binary_sensor"),
        (api.ButtonInfo(), "button"),
        (api.TextSensorInfo(), "text_sensor"),
        (api.UpdateInfo(), "update"),
        (api.AlarmControlPanelInfo(), "alarm_control_panel"),
        (api.DateTimeInfo(), "datetime"),
    ],
)
def test_platforms_are_named_as_esphome_names_them(info: api.EntityInfo, platform: str) -> None:
    assert platform_of(info) == platform


def test_a_kind_aioesphomeapi_adds_later_is_named_after_its_class() -> None:
    class GardenHoseInfo(api.EntityInfo):
        pass

    assert platform_of(GardenHoseInfo()) == "garden_hose"


@pytest.mark.parametrize(
    ("state", "value"),
    [
        (api.SensorState(key=1, state=21.5), 21.5),
        (api.SensorState(key=1, state=math.nan), None),
        (api.SensorState(key=1, state=3.0, missing_state=True), None),
        (api.NumberState(key=1, state=42.0), 42.0),
        (api.BinarySensorState(key=1, state=True), True),
        (api.SwitchState(key=1, state=False), False),
        (api.LightState(key=1, state=True), True),
        (api.TextSensorState(key=1, state="x" * 300), "x" * 255),
        (api.TextSensorState(key=1, state="gone", missing_state=True), None),
        (api.SelectState(key=1, state="eco"), "eco"),
        (api.CoverState(key=1, position=0.0), "closed"),
        (api.CoverState(key=1, position=0.4, current_operation=api.CoverOperation.IS_OPENING), "opening"),
        (api.ValveState(key=1, position=1.0), "open"),
        (api.LockEntityState(key=1, state=api.LockState.JAMMED), "jammed"),
        (api.ClimateState(key=1, mode=api.ClimateMode.HEAT), "heat"),
        (api.Event(key=1, event_type="double_click"), "double_click"),
        (api.DateState(key=1, year=2026, month=3, day=9), "2026-03-09"),
        (api.TimeState(key=1, hour=7, minute=5, second=0), "07:05:00"),
        (api.DateTimeState(key=1, epoch_seconds=0), "1970-01-01T00:00:00+00:00"),
        (api.CameraState(key=1, data=b"\xff\xd8"), NO_STATE),
    ],
)
def test_states_take_the_shapes_mqtt_states_take(state: api.EntityState, value: object) -> None:
    assert state_value(state) == value if value is not NO_STATE else state_value(state) is NO_STATE


def test_an_update_state_has_the_fields_of_esphomes_mqtt_update_json() -> None:
    state = api.UpdateState(
        key=1,
        current_version="1.0",
        latest_version="1.1",
        title="Relay",
        in_progress=True,
        has_progress=True,
        progress=40,
    )
    assert state_value(state) == {
        "installed_version": "1.0",
        "latest_version": "1.1",
        "title": "Relay",
        "in_progress": True,
        "update_percentage": 40.0,
    }
    assert state_value(api.UpdateState(key=1, current_version="1.0")) == {
        "installed_version": "1.0",
        "in_progress": False,
    }


# --- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["192.168.1.23", "::1", "relay-1", "relay-1.lan", "hub.example.org."])
def test_hosts_are_ip_addresses_or_dns_names(value: str) -> None:
    assert host(value) == value


@pytest.mark.parametrize("value", ["relay-1.local", "Relay-1.LOCAL.", "", "  ", "bad host", "-x", 6053])
def test_mdns_names_and_garbage_are_refused(value: object) -> None:
    with pytest.raises(vol.Invalid):
        host(value)


def test_encryption_keys_are_32_bytes_of_base64() -> None:
    assert encryption_key(KEY) == KEY
    for bad in ("not base64!", "c2hvcnQ=", 42):
        with pytest.raises(vol.Invalid):
            encryption_key(bad)


def test_a_node_needs_a_host_or_a_name_and_is_listed_once() -> None:
    assert NODE_SCHEMA({"host": "10.0.0.5"}) == {
        "host": "10.0.0.5",
        "port": 6053,
        "name": None,
        "encryption_key": None,
        "password": None,
    }
    assert NODE_SCHEMA({"name": "relay-1", "encryption_key": KEY})["host"] is None
    with pytest.raises(vol.Invalid, match="needs a host, or a name"):
        NODE_SCHEMA({"port": 6053})
    with pytest.raises(vol.Invalid, match="listed twice"):
        SCHEMA({"nodes": [{"host": "10.0.0.5"}, {"host": "10.0.0.5", "port": 6053}]})
    with pytest.raises(vol.Invalid):
        NODE_SCHEMA({"name": "Relay_1"})  # not an ESPHome node name
    assert SCHEMA({}) == {"auto_connect": False, "keepalive": 20.0, "nodes": []}
