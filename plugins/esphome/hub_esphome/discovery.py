"""Home Assistant MQTT discovery configs → the device and the entities the hub registers.

Pure functions over the parsed JSON: :func:`parse_config` takes the expanded
(see :mod:`.abbreviations`) payload of one discovery topic and returns its
:class:`Device` and :class:`EntityConfig` list (one for an entity config, one per
component for a device config).  What the hub needs again after a restart is
kept in the entity's attributes (:meth:`EntityConfig.attributes`) and read back
by :func:`entity_config_from_attributes`, so no discovery config has to be seen
twice.

Identity:

* **device** → node id: the MAC of a ``connections`` entry ``["mac", …]``, else
  the first ``identifiers`` entry (a MAC is normalised, anything else made safe
  for an id), else the topic's ``<node_id>`` level; a config with none of these
  is rejected (``no_device``).
* **entity** → ``<platform>.<object_id>`` within its node, where ``object_id``
  is the topic's last id level (or the component's id in a device config); the
  ``unique_id`` is kept as an attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

from hub import Entity, normalize_mac

from .contract import (
    DEVICE_COMPONENT,
    MAX_COMPONENTS,
    REJECT_BAD_CONFIG,
    REJECT_NO_DEVICE,
    DiscoveryTopic,
    Invalid,
    check_id,
    check_publish_topic,
    node_id_from_identifier,
)

DEFAULT_AVAILABLE: Final = "online"
DEFAULT_NOT_AVAILABLE: Final = "offline"
AVAILABILITY_MODES: Final = frozenset({"latest", "all", "any"})

_DEVICE_ATTRIBUTES: Final = (
    "manufacturer",
    "model",
    "model_id",
    "sw_version",
    "hw_version",
    "serial_number",
    "suggested_area",
    "configuration_url",
    "via_device",
)
"""Device fields kept as node attributes (strings only)."""

_PASSTHROUGH: Final = (
    "command_topic",
    "icon",
    "entity_category",
    "enabled_by_default",
    "suggested_display_precision",
    "schema",
    "force_update",
    "options",
    "min",
    "max",
    "step",
    "mode",
    "payload_press",
    "payload_install",
    "optimistic",
)
"""Config keys kept verbatim as entity attributes (scalars, or lists of scalars), for the API and commands."""

_SHARED_EXCLUDED: Final = frozenset({"device", "origin", "components"})


@dataclass(frozen=True, slots=True)
class Availability:
    """One availability topic: the payloads meaning available / not available, and an optional template."""

    topic: str
    payload_available: str = DEFAULT_AVAILABLE
    payload_not_available: str = DEFAULT_NOT_AVAILABLE
    value_template: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "topic": self.topic,
            "payload_available": self.payload_available,
            "payload_not_available": self.payload_not_available,
        }
        if self.value_template is not None:
            data["value_template"] = self.value_template
        return data


@dataclass(frozen=True, slots=True)
class Device:
    """The node a config belongs to."""

    node_id: str
    name: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntityConfig:
    """One entity as discovered: what the registry holds and what the hub subscribes for it."""

    discovery_id: str
    """The discovery topic, plus ``#<component id>`` for a component of a device config."""
    platform: str
    object_id: str
    name: str | None
    unique_id: str | None = None
    state_topic: str | None = None
    value_template: str | None = None
    payload_on: Any = "ON"
    payload_off: Any = "OFF"
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    expire_after: float | None = None
    availability: tuple[Availability, ...] = ()
    availability_mode: str = "latest"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The entity's key within its node: ``<platform>.<object_id>`` (a switch and a sensor may share an id)."""
        return f"{self.platform}.{self.object_id}"

    def attributes(self) -> dict[str, Any]:
        """What the registry (and storage) keep for this entity; enough to rebuild it (see the module docstring)."""
        data: dict[str, Any] = {"discovery_id": self.discovery_id, "object_id": self.object_id}
        if self.unique_id is not None:
            data["unique_id"] = self.unique_id
        if self.state_topic is not None:
            data["state_topic"] = self.state_topic
        if self.value_template is not None:
            data["value_template"] = self.value_template
        if self.payload_on != "ON":
            data["payload_on"] = self.payload_on
        if self.payload_off != "OFF":
            data["payload_off"] = self.payload_off
        if self.expire_after is not None:
            data["expire_after"] = self.expire_after
        if self.availability:
            data["availability"] = [entry.as_dict() for entry in self.availability]
            data["availability_mode"] = self.availability_mode
        data.update(self.extra)
        return data


def parse_config(topic: DiscoveryTopic, config: dict[str, Any]) -> tuple[Device, list[EntityConfig]]:
    """The device and entities of one expanded, non-empty discovery config; :class:`Invalid` when unusable."""
    device = _device(config.get("device"), topic)
    if topic.component != DEVICE_COMPONENT:
        return device, [_entity(topic.topic, topic.component, topic.object_id, config)]
    components = config.get("components")
    if not isinstance(components, dict) or not components:
        raise Invalid(REJECT_BAD_CONFIG, "a device config needs 'components' (cmps)")
    if len(components) > MAX_COMPONENTS:
        raise Invalid(REJECT_BAD_CONFIG, f"{len(components)} components > {MAX_COMPONENTS}")
    shared = {key: value for key, value in config.items() if key not in _SHARED_EXCLUDED}
    entities = []
    for component_id, component in components.items():
        if not isinstance(component, dict):
            raise Invalid(REJECT_BAD_CONFIG, f"component {str(component_id)[:40]!r} is not an object")
        platform = component.get("platform")
        if not isinstance(platform, str) or not platform:
            raise Invalid(REJECT_BAD_CONFIG, f"component {str(component_id)[:40]!r} has no platform (p)")
        if set(component) == {"platform"}:
            continue  # Home Assistant's way of withdrawing one component of a device
        check_id(component_id, "component id")
        merged = {**shared, **component}
        entities.append(_entity(f"{topic.topic}#{component_id}", platform, component_id, merged))
    return device, entities


def _device(data: object, topic: DiscoveryTopic) -> Device:
    if data is None:
        if topic.node_id is None:
            raise Invalid(REJECT_NO_DEVICE, "no device (dev) and no <node_id> level in the topic")
        return Device(node_id_from_identifier(topic.node_id), None, {})
    if not isinstance(data, dict):
        raise Invalid(REJECT_BAD_CONFIG, "device (dev) is not an object")
    node_id = _mac_connection(data.get("connections"))
    identifiers = data.get("identifiers")
    if isinstance(identifiers, str):
        identifiers = [identifiers]
    if not isinstance(identifiers, list):
        identifiers = []
    identifiers = [value for value in identifiers if isinstance(value, str) and value]
    if node_id is None and identifiers:
        node_id = node_id_from_identifier(identifiers[0])
    if node_id is None:
        if topic.node_id is None:
            raise Invalid(REJECT_NO_DEVICE, "the device has no MAC connection and no identifiers")
        node_id = node_id_from_identifier(topic.node_id)
    attributes: dict[str, Any] = {
        key: value[:200] for key in _DEVICE_ATTRIBUTES if isinstance(value := data.get(key), str) and value
    }
    if identifiers:
        attributes["identifiers"] = [value[:200] for value in identifiers[:8]]
    name = data.get("name")
    return Device(node_id, name[:200] if isinstance(name, str) and name else None, attributes)


def _mac_connection(connections: object) -> str | None:
    """The canonical MAC of the first ``["mac", …]`` connection, if there is a usable one."""
    if not isinstance(connections, list):
        return None
    for connection in connections:
        if isinstance(connection, list) and len(connection) == 2 and connection[0] == "mac":
            try:
                return normalize_mac(connection[1])
            except ValueError:
                return None
    return None


def _entity(discovery_id: str, platform: str, object_id: str, config: dict[str, Any]) -> EntityConfig:
    state_topic = config.get("state_topic")
    if state_topic is not None:
        state_topic = check_publish_topic(state_topic, "state_topic")
    name = config.get("name")
    return EntityConfig(
        discovery_id=discovery_id,
        platform=platform,
        object_id=object_id,
        name=name[:200] if isinstance(name, str) and name else None,
        unique_id=_text(config.get("unique_id")),
        state_topic=state_topic,
        value_template=_text(config.get("value_template")),
        payload_on=_payload(config.get("state_on", config.get("payload_on")), "ON"),
        payload_off=_payload(config.get("state_off", config.get("payload_off")), "OFF"),
        unit=_text(config.get("unit_of_measurement")),
        device_class=_text(config.get("device_class")),
        state_class=_text(config.get("state_class")),
        expire_after=_expire_after(config.get("expire_after")),
        availability=_availability(config),
        availability_mode=_availability_mode(config.get("availability_mode")),
        extra=_extra(config),
    )


def _text(value: object, limit: int = 256) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _payload(value: object, default: str) -> Any:
    if value is None:
        return default
    if isinstance(value, str | bool | int | float):
        return value
    raise Invalid(REJECT_BAD_CONFIG, f"payload {str(value)[:40]!r} is not a scalar")


def _expire_after(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise Invalid(REJECT_BAD_CONFIG, f"expire_after {str(value)[:40]!r} is not a number of seconds")
    return float(value) if value > 0 else None


def _availability(config: dict[str, Any]) -> tuple[Availability, ...]:
    entries: list[Availability] = []
    topic = config.get("availability_topic")
    if topic is not None:
        entries.append(
            Availability(
                check_publish_topic(topic, "availability_topic"),
                str(_payload(config.get("payload_available"), DEFAULT_AVAILABLE)),
                str(_payload(config.get("payload_not_available"), DEFAULT_NOT_AVAILABLE)),
                _text(config.get("availability_template")),
            )
        )
    listed = config.get("availability")
    if listed is not None:
        if not isinstance(listed, list):
            raise Invalid(REJECT_BAD_CONFIG, "availability (avty) is not a list")
        for entry in listed[:8]:
            if not isinstance(entry, dict):
                raise Invalid(REJECT_BAD_CONFIG, "an availability entry is not an object")
            entries.append(
                Availability(
                    check_publish_topic(entry.get("topic"), "availability topic"),
                    str(_payload(entry.get("payload_available"), DEFAULT_AVAILABLE)),
                    str(_payload(entry.get("payload_not_available"), DEFAULT_NOT_AVAILABLE)),
                    _text(entry.get("value_template")),
                )
            )
    return tuple(entries)


def _availability_mode(value: object) -> str:
    if value is None:
        return "latest"
    if not isinstance(value, str) or value not in AVAILABILITY_MODES:  # a list or object is unhashable
        raise Invalid(REJECT_BAD_CONFIG, f"availability_mode {str(value)[:20]!r}")
    return value  # type: ignore[return-value]


def _extra(config: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for key in _PASSTHROUGH:
        value = config.get(key)
        if isinstance(value, str):
            extra[key] = value[:256]
        elif isinstance(value, bool | int | float) and not (isinstance(value, float) and not math.isfinite(value)):
            extra[key] = value
        elif isinstance(value, list) and len(value) <= 64 and all(isinstance(item, str) for item in value):
            extra[key] = [item[:128] for item in value]
    return extra


def entity_config_from_entity(entity: Entity) -> EntityConfig:
    """Rebuild a registered (e.g. restored) entity's config from its attributes; :class:`Invalid` if damaged."""
    attributes = entity.attributes
    try:
        availability = tuple(
            Availability(
                entry["topic"],
                entry["payload_available"],
                entry["payload_not_available"],
                entry.get("value_template"),
            )
            for entry in attributes.get("availability", ())
        )
        return EntityConfig(
            discovery_id=attributes["discovery_id"],
            platform=entity.platform,
            object_id=attributes["object_id"],
            name=entity.name,
            unique_id=attributes.get("unique_id"),
            state_topic=attributes.get("state_topic"),
            value_template=attributes.get("value_template"),
            payload_on=attributes.get("payload_on", "ON"),
            payload_off=attributes.get("payload_off", "OFF"),
            unit=entity.unit,
            device_class=entity.device_class,
            state_class=entity.state_class,
            expire_after=attributes.get("expire_after"),
            availability=availability,
            availability_mode=attributes.get("availability_mode", "latest"),
            extra={key: attributes[key] for key in _PASSTHROUGH if key in attributes},
        )
    except (KeyError, TypeError) as err:
        raise Invalid(REJECT_BAD_CONFIG, f"stored discovery attributes are damaged: {err!r}") from err
