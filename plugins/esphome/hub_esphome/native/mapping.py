"""aioesphomeapi's models → what the registry holds: the node, its entities, their states.

Pure functions over aioesphomeapi's own dataclasses (``DeviceInfo``, ``SensorInfo``,
``SwitchState``, …), so the tests build real model objects, no connection needed.

The same node and entity keys as MQTT discovery (:mod:`..discovery`): the node is
the device's MAC (``aa:bb:cc:dd:ee:ff``), an entity is ``<platform>.<object_id>``,
and states take the same shapes (:mod:`..states`).  A board that speaks both
(ESPHome's ``api:`` and ``mqtt:`` together) is one node with one set of entities.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Final

import aioesphomeapi as api

from hub import normalize_mac

from ..contract import MAX_TEXT

NO_STATE: Any = object()
"""What :func:`state_value` returns for a state the hub does not keep (a camera frame, an unknown kind)."""

NATIVE_KEY: Final = "native_key"
"""Entity attribute: the entity's key in the native API (what commands name)."""

_PLATFORMS: Final[dict[type[api.EntityInfo], str]] = {
    api.AlarmControlPanelInfo: "alarm_control_panel",
    api.BinarySensorInfo: "binary_sensor",
    api.ButtonInfo: "button",
    api.CameraInfo: "camera",
    api.ClimateInfo: "climate",
    api.CoverInfo: "cover",
    api.DateInfo: "date",
    api.DateTimeInfo: "datetime",
    api.EventInfo: "event",
    api.FanInfo: "fan",
    api.LightInfo: "light",
    api.LockInfo: "lock",
    api.MediaPlayerInfo: "media_player",
    api.NumberInfo: "number",
    api.SelectInfo: "select",
    api.SensorInfo: "sensor",
    api.SirenInfo: "siren",
    api.SwitchInfo: "switch",
    api.TextInfo: "text",
    api.TextSensorInfo: "text_sensor",
    api.TimeInfo: "time",
    api.UpdateInfo: "update",
    api.ValveInfo: "valve",
    api.WaterHeaterInfo: "water_heater",
}
"""Entity kinds as ESPHome and Home Assistant name their platforms."""

_DEVICE_ATTRIBUTES: Final = {
    "name": "esphome_name",
    "friendly_name": "friendly_name",
    "esphome_version": "esphome_version",
    "model": "board",
    "manufacturer": "manufacturer",
    "project_name": "project_name",
    "project_version": "project_version",
    "compilation_time": "compilation_time",
    "suggested_area": "suggested_area",
}
"""DeviceInfo field → node attribute (the names ``esphome/discover/<name>`` uses where both have it)."""


@dataclass(frozen=True, slots=True)
class NodeFields:
    """What a native device info sets on its node."""

    node_id: str
    name: str
    firmware_version: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """One entity as the native API lists it, in the registry's terms."""

    key: str
    platform: str
    name: str
    unit: str | None
    device_class: str | None
    state_class: str | None
    attributes: dict[str, Any]

    @property
    def native_key(self) -> int:
        return int(self.attributes[NATIVE_KEY])

    @property
    def device_id(self) -> int:
        return int(self.attributes.get("device_id", 0))


def node_fields(info: api.DeviceInfo) -> NodeFields:
    """The node of a device info; ValueError when its MAC is unusable (the node cannot be keyed)."""
    node_id = normalize_mac(info.mac_address)
    attributes: dict[str, Any] = {}
    for field, attribute in _DEVICE_ATTRIBUTES.items():
        value = getattr(info, field, "")
        if isinstance(value, str) and value:
            attributes[attribute] = value[:128]
    firmware = attributes.get("project_version") or attributes.get("esphome_version")
    return NodeFields(node_id, (info.friendly_name or info.name or node_id)[:200], firmware, attributes)


def platform_of(info: api.EntityInfo) -> str:
    """``sensor``, ``switch``, …; a kind this table does not know yet is named after its class (``FooBarInfo``)."""
    platform = _PLATFORMS.get(type(info))
    if platform is not None:
        return platform
    name = type(info).__name__.removesuffix("Info")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def entity_spec(info: api.EntityInfo, device_name: str) -> EntitySpec:
    """The registry's view of one listed entity (``device_name`` names entities whose own name is empty)."""
    platform = platform_of(info)
    attributes: dict[str, Any] = {NATIVE_KEY: info.key, "object_id": info.object_id}
    if info.device_id:
        attributes["device_id"] = info.device_id
    if info.icon:
        attributes["icon"] = info.icon[:64]
    category = info.entity_category
    if category is not None and category != api.EntityCategory.NONE:
        attributes["entity_category"] = category.name.lower()
    if info.disabled_by_default:
        attributes["enabled_by_default"] = False
    unit = state_class = None
    if isinstance(info, api.SensorInfo):
        unit = info.unit_of_measurement or None
        if info.state_class not in (None, api.SensorStateClass.NONE):
            state_class = info.state_class.name.lower()
        attributes["suggested_display_precision"] = info.accuracy_decimals
        if info.force_update:
            attributes["force_update"] = True
    elif isinstance(info, api.NumberInfo):
        unit = info.unit_of_measurement or None
        attributes.update(min=_finite(info.min_value), max=_finite(info.max_value), step=_finite(info.step))
        if info.mode is not None:
            attributes["mode"] = info.mode.name.lower()
    elif isinstance(info, api.SelectInfo):
        attributes["options"] = [option[:128] for option in info.options[:64]]
    elif isinstance(info, api.EventInfo):
        attributes["event_types"] = [kind[:64] for kind in info.event_types[:64]]
    if getattr(info, "assumed_state", False):
        attributes["assumed_state"] = True
    if getattr(info, "is_status_binary_sensor", False):
        attributes["status_sensor"] = True
    device_class = getattr(info, "device_class", "") or None
    return EntitySpec(
        key=f"{platform}.{info.object_id}",
        platform=platform,
        name=(info.name or device_name or info.object_id.replace("_", " ").capitalize())[:200],
        unit=unit,
        device_class=device_class,
        state_class=state_class,
        attributes={key: value for key, value in attributes.items() if value is not None},
    )


def _finite(value: float) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


# --- states ------------------------------------------------------------------------------
def state_value(state: api.EntityState) -> Any:
    """The registry's value for one state message (None: unknown), or :data:`NO_STATE`."""
    if getattr(state, "missing_state", False):
        return None
    converter = _STATES.get(type(state))
    return converter(state) if converter is not None else _enum_state(state)


def _float(state: Any) -> float | None:
    value = state.state
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _bool(state: Any) -> bool:
    return bool(state.state)


def _text(state: Any) -> str:
    return str(state.state)[:MAX_TEXT]


def _update(state: api.UpdateState) -> dict[str, Any]:
    """The fields MQTT's update JSON has (:data:`..states.UPDATE_FIELDS`); empty texts left out, as MQTT leaves them."""
    value: dict[str, Any] = {"in_progress": state.in_progress}
    texts = {
        "installed_version": state.current_version,
        "latest_version": state.latest_version,
        "title": state.title,
        "release_summary": state.release_summary,
        "release_url": state.release_url,
    }
    value.update({key: text[:MAX_TEXT] for key, text in texts.items() if text})
    if state.has_progress and math.isfinite(state.progress):
        value["update_percentage"] = state.progress
    return value


def _moving(state: api.CoverState | api.ValveState) -> str:
    """``opening``/``closing`` while it moves, else ``open`` or ``closed``, as MQTT covers and valves say it."""
    operation = state.current_operation
    if operation is not None and operation.value == 1:
        return "opening"
    if operation is not None and operation.value == 2:
        return "closing"
    return "open" if state.position > 0.0 else "closed"


def _event(state: api.Event) -> str:
    return state.event_type[:MAX_TEXT]


def _date(state: api.DateState) -> str:
    return f"{state.year:04d}-{state.month:02d}-{state.day:02d}"


def _time(state: api.TimeState) -> str:
    return f"{state.hour:02d}:{state.minute:02d}:{state.second:02d}"


def _datetime(state: api.DateTimeState) -> str:
    return dt.datetime.fromtimestamp(state.epoch_seconds, dt.UTC).isoformat()


def _climate(state: api.ClimateState) -> str | None:
    return state.mode.name.lower() if state.mode is not None else None


def _enum_state(state: Any) -> Any:
    """Kinds without a converter of their own (lock, media player, alarm panel): their ``state`` enum's name."""
    value = getattr(state, "state", NO_STATE)
    if value is NO_STATE or value is None:
        return NO_STATE if value is NO_STATE else None
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return name.lower()
    if isinstance(value, bool | str):
        return value if isinstance(value, bool) else value[:MAX_TEXT]
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    return NO_STATE


_STATES: Final[dict[type[Any], Any]] = {
    api.SensorState: _float,
    api.NumberState: _float,
    api.BinarySensorState: _bool,
    api.SwitchState: _bool,
    api.FanState: _bool,
    api.LightState: _bool,
    api.SirenState: _bool,
    api.TextSensorState: _text,
    api.TextState: _text,
    api.SelectState: _text,
    api.UpdateState: _update,
    api.CoverState: _moving,
    api.ValveState: _moving,
    api.Event: _event,
    api.DateState: _date,
    api.TimeState: _time,
    api.DateTimeState: _datetime,
    api.ClimateState: _climate,
    api.CameraState: lambda _state: NO_STATE,
}
