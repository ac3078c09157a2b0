"""One native API node on the registry's side: its node, its entities, its states, its availability.

What a connection learns goes into the registry exactly as MQTT discovery's does,
so storage, presence, the API and the dashboard treat both alike:

* on connect: the device info updates (or registers) the node, the listed
  entities are registered (a changed one replaced, a vanished one removed), and
  ``report_availability(online)`` marks it online at once;
* every state the node streams is a live reading: ``report_states`` (a telemetry
  row, proof of life), several arriving in one event-loop turn reported together
  (the burst of current states right after subscribing is one message, not fifty);
* while connected, each answer to the heartbeat's request (every 5 s at most) is a
  ``report_availability(online)``, so presence does not time out a node whose
  entities rarely change while it answers;
* on disconnect: ``report_availability(offline)``: presence marks it offline with
  reason ``lwt`` at once, as for an MQTT node's Last Will.

An entity that MQTT discovery already registered (a board speaking both) is left as
it is: its states are fed, its attributes stay MQTT's.

What the registry's limits refuse (``hub: limits:``) is counted as a rejection by
reason: a new node (the connection is dropped and tried again later), an entity
(left out; its states are ignored) or device attributes (the others are set).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

import aioesphomeapi as api

from hub import LimitExceeded, Node, NodeRegistry, RateLimitedLogger, Rejections, fit_attributes

from .mapping import NATIVE_KEY, NO_STATE, EntitySpec, entity_spec, node_fields, state_value

_LOGGER = logging.getLogger(__name__)

NATIVE_ATTRIBUTE: Final = "native_api"
"""Node attribute: the address the hub connects to (``host:port``)."""
SOURCE_ATTRIBUTE: Final = "source"
SOURCE: Final = "native_api"
_RUNTIME_ATTRIBUTES: Final = frozenset({"restored", "expired"})


class NativeDevice:
    """The registry side of one native API connection (see the module docstring)."""

    def __init__(
        self, registry: NodeRegistry, clock: Callable[[], float], address: str, rejections: Rejections
    ) -> None:
        self._registry = registry
        self._clock = clock
        self.address = address
        self._rejections = rejections
        self._source = f"native API {address}"
        """What a rejection names instead of a topic."""
        self.node: Node | None = None
        self.entities: dict[str, EntitySpec] = {}
        """Entity key → what the node listed (commands look up native keys here)."""
        self._by_native: dict[tuple[int, int], str] = {}
        self._pending: dict[str, Any] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._log = RateLimitedLogger(_LOGGER)

    @property
    def node_id(self) -> str | None:
        return self.node.node_id if self.node is not None else None

    # --- connect ------------------------------------------------------------------------
    def connected(self, info: api.DeviceInfo, listed: list[api.EntityInfo]) -> Node:
        """Register the node and its entities, and report it online.

        ValueError for a device without a usable MAC; LimitExceeded (counted) for a new node the
        registry's limits refuse.
        """
        fields = node_fields(info)
        registry = self._registry
        node = registry.get(fields.node_id)
        if node is None:
            try:
                node = registry.get_or_register(fields.node_id, name=fields.name)
            except LimitExceeded as err:
                self._rejections.reject(err.reason, self._source, str(err))
                raise
            self._log.log(
                logging.INFO, "new", "New ESPHome node %s registered as %r over the native API", node.node_id, node.name
            )
        attributes = {**fields.attributes, NATIVE_ATTRIBUTE: self.address}
        if SOURCE_ATTRIBUTE not in node.attributes:
            attributes[SOURCE_ATTRIBUTE] = SOURCE
        changes: dict[str, Any] = {}
        delta = {key: value for key, value in attributes.items() if node.attributes.get(key) != value}
        if delta:
            delta, refused = fit_attributes(node.attributes, delta, registry.limits)
            if refused is not None:
                self._rejections.reject(refused.reason, self._source, f"{refused}; the rest of the device info kept")
            if delta:
                changes["attributes"] = delta
        if fields.firmware_version is not None and fields.firmware_version != node.firmware_version:
            changes["firmware_version"] = fields.firmware_version
        if changes:
            registry.update_node(node, **changes)
        self.node = node
        self._register_entities(node, [entity_spec(entity, fields.name) for entity in listed])
        registry.report_availability(node, True)
        return node

    def _register_entities(self, node: Node, specs: list[EntitySpec]) -> None:
        self.entities = {}
        self._by_native = {}
        for spec in specs:
            if spec.key in self.entities:
                self._log.warning(
                    f"duplicate:{node.node_id}",
                    "%s lists entity %s twice (sub-devices?): kept the first",
                    node.node_id,
                    spec.key,
                )
                continue
            self.entities[spec.key] = spec
            self._by_native[(spec.device_id, spec.native_key)] = spec.key
        registry = self._registry
        for key, entity in list(node.entities.items()):
            if NATIVE_KEY in entity.attributes and key not in self.entities:
                registry.remove_entity(node, key)  # gone from the node's firmware
        for spec in self.entities.values():
            self._put(node, spec)

    def _put(self, node: Node, spec: EntitySpec) -> None:
        registry = self._registry
        entity = node.entities.get(spec.key)
        if entity is not None:
            if "discovery_id" in entity.attributes:
                return  # MQTT discovery registered it: its states are fed, its description stays MQTT's
            kept = {k: v for k, v in entity.attributes.items() if k not in _RUNTIME_ATTRIBUTES}
            if (entity.platform, entity.name, entity.unit, entity.device_class, entity.state_class, kept) == (
                spec.platform,
                spec.name,
                spec.unit,
                spec.device_class,
                spec.state_class,
                spec.attributes,
            ):
                return
            registry.remove_entity(node, spec.key)
        try:
            new = registry.ensure_entity(
                node,
                spec.key,
                spec.platform,
                name=spec.name,
                unit=spec.unit,
                device_class=spec.device_class,
                state_class=spec.state_class,
                attributes=spec.attributes,
            )
        except LimitExceeded as err:  # left out: flush() ignores the states of entities the node lacks
            self._rejections.reject(err.reason, self._source, str(err))
            return
        if entity is not None:
            new.state, new.last_changed, new.last_reported = entity.state, entity.last_changed, entity.last_reported

    # --- states -------------------------------------------------------------------------
    def on_state(self, state: api.EntityState) -> None:
        """aioesphomeapi's state callback: queue the value, report the turn's values together."""
        key = self._by_native.get((state.device_id, state.key))
        if key is None:
            return  # an entity the listing did not have (the node lists before it streams)
        value = state_value(state)
        if value is NO_STATE:
            return
        self._pending[key] = value
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Report the queued states as one reading of the node."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending, self._pending = self._pending, {}
        node = self.node
        if not pending or node is None or self._registry.get(node.node_id) is not node:
            return
        states = {key: value for key, value in pending.items() if key in node.entities}
        if states:
            self._registry.report_states(node, states, self._clock())

    # --- liveness -------------------------------------------------------------------------
    def alive(self) -> None:
        """The node answered the heartbeat: tell presence, as a node's birth message would."""
        node = self.node
        if node is not None and self._registry.get(node.node_id) is node:
            self._registry.report_availability(node, True)

    def disconnected(self) -> None:
        """The connection is gone: report what was queued, then the node offline (presence: ``lwt``)."""
        self.flush()
        node = self.node
        if node is not None and self._registry.get(node.node_id) is node:
            self._registry.report_availability(node, False)
