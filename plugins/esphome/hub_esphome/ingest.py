"""Discovery configs and device info in, nodes and entities in the registry out.

:class:`DiscoveryIngest` keeps one :class:`_Record` per discovered entity
(keyed by its discovery id: the config topic, plus ``#<component>`` for a
device config's components) and wires it to the state and availability topics
of :class:`~.routes.Routes`.  It enforces the identities of
:mod:`.discovery`: a second discovery topic claiming an entity key or a
``unique_id`` that another one owns is a ``discovery_collision`` rejection
(counted, logged rate-limited); the first owner keeps it until it withdraws
its config.

A config that arrives again unchanged costs a comparison; a changed one
replaces the entity (``entity_removed`` then ``entity_registered``, the state
carried over); an empty payload withdraws the entities of that topic, which
removes them from the registry and from storage.

What the registry's limits refuse (``hub: limits:``: a new node, an entity past
the node's limit, attributes past theirs) is counted by its reason; the rest of
the config still applies.

At setup, entities restored from storage that carry discovery attributes are
wired again (:meth:`DiscoveryIngest.restore`), because a hub that restarts with
its MQTT session kept is not sent the retained configs a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from hub import (
    EVENT_NODE_REMOVED,
    Event,
    LimitExceeded,
    Node,
    NodeRemovedData,
    RateLimitedLogger,
    Rejections,
    fit_attributes,
)

from .abbreviations import expand
from .contract import (
    MAX_CONFIG_BYTES,
    REJECT_COLLISION,
    REJECT_NOT_JSON,
    REJECT_NOT_OBJECT,
    REJECT_TOO_LARGE,
    Invalid,
    parse_discovery_topic,
)
from .device_info import DeviceInfo, parse_device_info
from .discovery import Device, EntityConfig, entity_config_from_entity, parse_config
from .routes import EXPIRED, RESTORED, Routes, StateConsumer
from .states import STATELESS_PLATFORMS
from .templates import UnsupportedTemplate, parse_template

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

SOURCE_ATTRIBUTE = "source"
SOURCE = "mqtt_discovery"
UNSUPPORTED_TEMPLATE = "unsupported_template"
_RUNTIME_ATTRIBUTES = frozenset({RESTORED, EXPIRED})


@dataclass(slots=True)
class _Record:
    """One discovered entity and what it is wired to."""

    config: EntityConfig
    node: Node
    consumer: StateConsumer | None


class DiscoveryIngest:
    """Handlers for the discovery topics and ``esphome/discover/+``, bound to one hub."""

    def __init__(self, hub: Hub, prefix: str, on_device_info: Callable[[DeviceInfo], None] | None = None) -> None:
        self._registry = hub.registry
        self._clock = hub.clock
        self._prefix_levels = len(prefix.split("/"))
        self._rejections = Rejections(hub.metrics, _LOGGER)
        self._log = RateLimitedLogger(_LOGGER)
        self._on_device_info = on_device_info
        """Told every accepted device info (the native API connects announced nodes)."""
        self.routes = Routes(hub, self._rejections)
        self._records: dict[str, _Record] = {}
        self._by_topic: dict[str, set[str]] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._by_unique_id: dict[str, str] = {}
        self._entities_gauge = hub.metrics.gauge("esphome_entities", "Entities known from MQTT discovery")
        hub.bus.listen(EVENT_NODE_REMOVED, self._forget_node)

    # --- <prefix>/…/config ------------------------------------------------------------
    def handle_discovery(self, topic: str, payload: bytes, retained: bool) -> None:
        """One discovery config (or an empty payload withdrawing it); rejections are counted, never raised."""
        if len(payload) > MAX_CONFIG_BYTES:
            self._rejections.reject(REJECT_TOO_LARGE, topic, f"{len(payload)} bytes > {MAX_CONFIG_BYTES}")
            return
        try:
            discovery_topic = parse_discovery_topic(topic, self._prefix_levels)
            if not payload:
                self._withdraw_topic(topic)
                return
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError as err:
                raise Invalid(REJECT_NOT_JSON, str(err)[:120]) from err
            if not isinstance(data, dict):
                raise Invalid(REJECT_NOT_OBJECT, f"got {type(data).__name__}")
            device, entities = parse_config(discovery_topic, expand(data))
        except Invalid as err:
            self._rejections.reject(err.reason, topic, err.detail)
            return
        self._apply(topic, device, entities)

    def _apply(self, topic: str, device: Device, entities: list[EntityConfig]) -> None:
        wanted = {config.discovery_id for config in entities}
        for discovery_id in self._by_topic.get(topic, set()) - wanted:
            self._withdraw(discovery_id)
        node = self._node(topic, device)
        if node is None:
            return
        for config in entities:
            owner = self._by_key.get((node.node_id, config.key))
            if owner is not None and owner != config.discovery_id:
                self._collision(topic, f"entity {config.key!r} of {node.node_id} belongs to {owner}")
                continue
            owner = self._by_unique_id.get(config.unique_id) if config.unique_id is not None else None
            if owner is not None and owner != config.discovery_id:
                self._collision(topic, f"unique_id {config.unique_id!r} belongs to {owner}")
                continue
            self._put(topic, node, config, device)

    def _node(self, topic: str, device: Device) -> Node | None:
        """The device's node, registered if new (None, counted, when the registry's limits refuse it)."""
        node = self._get_or_register(topic, device.node_id, device.name or device.node_id, "from MQTT discovery")
        if node is None:
            return None
        firmware = device.attributes.get("sw_version")
        firmware = firmware if firmware and "esphome_version" not in node.attributes else None
        self._update_node(topic, node, {SOURCE_ATTRIBUTE: SOURCE, **device.attributes}, firmware)
        return node

    def _get_or_register(self, topic: str, node_id: str, name: str, origin: str) -> Node | None:
        node = self._registry.get(node_id)
        if node is not None:
            return node
        try:
            node = self._registry.get_or_register(node_id, name=name)
        except LimitExceeded as err:
            self._rejections.reject(err.reason, topic, str(err))
            return None
        self._log.log(logging.INFO, "new", "New device %s registered as %r %s", node.node_id, node.name, origin)
        return node

    def _update_node(self, topic: str, node: Node, attributes: dict[str, Any], firmware: str | None) -> None:
        """Set what changed of the device's attributes (those within the limits) and firmware version."""
        changes: dict[str, Any] = {}
        delta = {key: value for key, value in attributes.items() if node.attributes.get(key) != value}
        if delta:
            delta, refused = fit_attributes(node.attributes, delta, self._registry.limits)
            if refused is not None:
                self._rejections.reject(refused.reason, topic, f"{refused}; the rest of the config kept")
            if delta:
                changes["attributes"] = delta
        if firmware is not None and node.firmware_version != firmware:
            changes["firmware_version"] = firmware
        if changes:
            self._registry.update_node(node, **changes)

    def _put(self, topic: str, node: Node, config: EntityConfig, device: Device) -> None:
        """Register or update one entity and wire its topics (not when the registry's limits refuse it)."""
        record = self._records.get(config.discovery_id)
        if record is not None and record.config == config and record.node is node and config.key in node.entities:
            return  # the same config again (e.g. every time the device reconnects)
        if record is not None:
            self._withdraw(config.discovery_id, keep_entity=record.node is node and record.config.key == config.key)
        attributes = config.attributes()
        consumer = None
        try:
            for availability in config.availability:
                parse_template(availability.value_template)
            if config.state_topic is not None and config.platform not in STATELESS_PLATFORMS:
                consumer = StateConsumer(node, config)
        except UnsupportedTemplate as err:
            attributes[UNSUPPORTED_TEMPLATE] = True
            self._log.warning(
                f"template:{config.discovery_id}",
                "%s: template %s is not supported (see hub_esphome.templates); its state is not read",
                config.discovery_id,
                err,
            )
        name = config.name or device.name or config.object_id.replace("_", " ").capitalize()
        try:
            self._register_entity(node, config, name, attributes)
        except LimitExceeded as err:
            self._rejections.reject(err.reason, topic, str(err))
            return
        self._index(_Record(config, node, consumer))

    def _index(self, record: _Record) -> None:
        """Remember a wired record under its discovery id, topic, key and unique_id, and subscribe its topics."""
        config = record.config
        self._records[config.discovery_id] = record
        self._by_topic.setdefault(config.discovery_id.split("#", 1)[0], set()).add(config.discovery_id)
        self._by_key[(record.node.node_id, config.key)] = config.discovery_id
        if config.unique_id is not None:
            self._by_unique_id.setdefault(config.unique_id, config.discovery_id)
        self._wire(record)
        self._entities_gauge.set(len(self._records))

    def _register_entity(self, node: Node, config: EntityConfig, name: str, attributes: dict[str, Any]) -> None:
        registry = self._registry
        entity = node.entities.get(config.key)
        if entity is not None:
            kept = {k: v for k, v in entity.attributes.items() if k not in _RUNTIME_ATTRIBUTES}
            if (entity.platform, entity.name, entity.unit, entity.device_class, entity.state_class, kept) == (
                config.platform,
                name,
                config.unit,
                config.device_class,
                config.state_class,
                attributes,
            ):
                return
            registry.remove_entity(node, config.key)
        new = registry.ensure_entity(
            node,
            config.key,
            config.platform,
            name=name,
            unit=config.unit,
            device_class=config.device_class,
            state_class=config.state_class,
            attributes=attributes,
        )
        if entity is not None:
            new.state, new.last_changed, new.last_reported = entity.state, entity.last_changed, entity.last_reported

    def _wire(self, record: _Record) -> None:
        config = record.config
        if record.consumer is not None and config.state_topic is not None:
            self.routes.add_state(config.state_topic, record.consumer)
        if config.availability:
            self.routes.add_availability(record.node, config.availability, config.availability_mode)

    def _unwire(self, record: _Record) -> None:
        config = record.config
        if record.consumer is not None and config.state_topic is not None:
            self.routes.remove_state(config.state_topic, record.consumer)
        if config.availability:
            self.routes.remove_availability(record.node, config.availability)

    # --- withdrawing ---------------------------------------------------------------------
    def _withdraw_topic(self, topic: str) -> None:
        for discovery_id in list(self._by_topic.get(topic, ())):
            self._withdraw(discovery_id)

    def _withdraw(self, discovery_id: str, *, keep_entity: bool = False) -> None:
        record = self._records.pop(discovery_id, None)
        if record is None:
            return
        config = record.config
        self._unwire(record)
        topic = discovery_id.split("#", 1)[0]
        ids = self._by_topic.get(topic)
        if ids is not None:
            ids.discard(discovery_id)
            if not ids:
                del self._by_topic[topic]
        if self._by_key.get((record.node.node_id, config.key)) == discovery_id:
            del self._by_key[(record.node.node_id, config.key)]
        if config.unique_id is not None and self._by_unique_id.get(config.unique_id) == discovery_id:
            del self._by_unique_id[config.unique_id]
        if not keep_entity and self._registry.get(record.node.node_id) is record.node:
            self._registry.remove_entity(record.node, config.key)
        self._entities_gauge.set(len(self._records))

    def _forget_node(self, event: Event[NodeRemovedData]) -> None:
        """An operator removed the node: drop its records (the registry already forgot its entities)."""
        node_id = event.data["node_id"]
        for discovery_id in [d for d, record in self._records.items() if record.node.node_id == node_id]:
            self._withdraw(discovery_id, keep_entity=True)
        self.routes.forget_node(node_id)

    def _collision(self, topic: str, detail: str) -> None:
        self._rejections.reject(REJECT_COLLISION, topic, detail)

    # --- esphome/discover/<name> -----------------------------------------------------------
    def handle_device_info(self, topic: str, payload: bytes, retained: bool) -> None:
        """ESPHome's device info: IP, version, board, MAC → node attributes and firmware version."""
        if not payload:
            return  # a retained device info being cleared
        if len(payload) > MAX_CONFIG_BYTES:
            self._rejections.reject(REJECT_TOO_LARGE, topic, f"{len(payload)} bytes > {MAX_CONFIG_BYTES}")
            return
        try:
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError as err:
                raise Invalid(REJECT_NOT_JSON, str(err)[:120]) from err
            info = parse_device_info(topic, data)
        except Invalid as err:
            self._rejections.reject(err.reason, topic, err.detail)
            return
        node = self._get_or_register(topic, info.node_id, info.friendly_name or info.name, f"from {topic}")
        if node is None:
            return
        self._update_node(topic, node, {SOURCE_ATTRIBUTE: SOURCE, **info.attributes}, info.firmware_version)
        if self._on_device_info is not None:
            self._on_device_info(info)

    # --- restart -----------------------------------------------------------------------------
    def restore(self) -> int:
        """Wire the entities storage restored (see the module docstring); returns how many."""
        restored = 0
        for node in self._registry:
            for entity in list(node.entities.values()):
                if "discovery_id" not in entity.attributes:
                    continue
                try:
                    config = entity_config_from_entity(entity)
                    consumer = (
                        StateConsumer(node, config)
                        if config.state_topic is not None
                        and config.platform not in STATELESS_PLATFORMS
                        and not entity.attributes.get(UNSUPPORTED_TEMPLATE)
                        else None
                    )
                except (Invalid, UnsupportedTemplate) as err:
                    self._log.warning("restore", "Entity %s of %s not rewired: %s", entity.key, node.node_id, err)
                    continue
                if config.discovery_id not in self._records:
                    self._index(_Record(config, node, consumer))
                    restored += 1
        return restored
