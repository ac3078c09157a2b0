"""The node registry: every node the hub knows, its entities and their current states, in memory.

Nodes are keyed by a canonical id (for ESP32 nodes, the MAC in the form of
:func:`hub.core.mac.normalize_mac`).  The registry is the single writer of
node and entity state; every change goes out on the event bus, so storage,
presence, the web API and plugins all see the same history.

Like Home Assistant's state machine, "state changed" and "state reported" are
distinct: :data:`~hub.core.const.EVENT_STATE_REPORTED` fires once per
message with all its readings (storage records it), while
:data:`~hub.core.const.EVENT_STATE_CHANGED` fires per entity whose value
actually differs (what a live view or an automation wants).

All methods are synchronous and must be called from the event loop thread;
they never block, which is what keeps them usable on the ingest hot path.

The registry enforces the limits of :mod:`hub.core.limits` (``hub: limits:``):
registering a node, an entity or an attribute past them raises
:class:`~hub.core.errors.LimitExceeded` and changes nothing.  It also keeps the
node ids sorted, so the API pages through the fleet (:meth:`NodeRegistry.nodes_after`)
without sorting it per request.
"""

from __future__ import annotations

import copy
import time
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .const import (
    EVENT_AVAILABILITY_REPORTED,
    EVENT_ENTITY_REGISTERED,
    EVENT_ENTITY_REMOVED,
    EVENT_NODE_REGISTERED,
    EVENT_NODE_REMOVED,
    EVENT_NODE_STATUS_CHANGED,
    EVENT_NODE_UPDATED,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATUS_UNKNOWN,
)
from .errors import LimitExceeded
from .event_types import (
    AvailabilityReportedData,
    EntityRegisteredData,
    EntityRemovedData,
    NodeRegisteredData,
    NodeRemovedData,
    NodeStatusChangedData,
    NodeUpdatedData,
    StateChangedData,
    StateReportedData,
)
from .events import EventBus
from .labels import normalize_area, normalize_tags
from .limits import (
    REASON_ENTITY_LIMIT,
    REASON_NODE_LIMIT,
    REASON_NODE_RATE,
    Limits,
    NodeRate,
    check_attributes,
)


@dataclass(slots=True)
class Entity:
    """One thing a node measures or exposes: a sensor reading, a switch, a firmware update slot…"""

    key: str
    """Unique within its node, e.g. ``temperature``; ESPHome's object_id."""
    platform: str = "sensor"
    name: str = ""
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    state: Any = None
    last_changed: float | None = None
    last_reported: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for events, storage and the API.

        Spelled out rather than ``dataclasses.asdict``, whose recursive deep copy made a 10,000-node
        ``get_nodes`` (50,000 entities) take seconds.  The attributes are copied one level deep, as
        :meth:`Node.as_dict` does (the registry replaces values, it never changes one in place);
        the web API does not call this at all (it serialises the live objects).
        """
        return {
            "key": self.key,
            "platform": self.platform,
            "name": self.name,
            "unit": self.unit,
            "device_class": self.device_class,
            "state_class": self.state_class,
            "attributes": dict(self.attributes),
            "state": self.state
            if isinstance(self.state, str | int | float | bool | None)
            else copy.deepcopy(self.state),
            "last_changed": self.last_changed,
            "last_reported": self.last_reported,
        }


@dataclass(slots=True)
class Node:
    """A device in the fleet."""

    node_id: str
    name: str
    status: str = STATUS_UNKNOWN
    status_reason: str | None = None
    status_since: float | None = None
    first_seen: float | None = None
    last_seen: float | None = None
    firmware_version: str | None = None
    description: str = ""
    area: str | None = None
    """Where the node is (one area, e.g. ``greenhouse 2``); see :mod:`hub.core.labels` for the spelling rules."""
    tags: list[str] = field(default_factory=list)
    """What the node is (e.g. ``beta``, ``relay-board``): lower-case, sorted, at most 32."""
    attributes: dict[str, Any] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)

    def as_dict(self, *, entities: bool = True) -> dict[str, Any]:
        """Plain data for events, storage and the API (entities as a list, optionally left out)."""
        data: dict[str, Any] = {
            "node_id": self.node_id,
            "name": self.name,
            "status": self.status,
            "status_reason": self.status_reason,
            "status_since": self.status_since,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "firmware_version": self.firmware_version,
            "description": self.description,
            "area": self.area,
            "tags": list(self.tags),
            "attributes": dict(self.attributes),
        }
        if entities:
            data["entities"] = [entity.as_dict() for entity in self.entities.values()]
        return data


UPDATABLE_FIELDS = frozenset({"name", "description", "firmware_version", "area", "tags", "attributes"})


class NodeRegistry:
    """Nodes by id, with the operations that change them; see the module docstring."""

    def __init__(self, bus: EventBus, clock: Callable[[], float] = time.time, limits: Limits | None = None) -> None:
        self._bus = bus
        self._clock = clock
        self._nodes: dict[str, Node] = {}
        self._order: list[str] = []
        """Every node id, sorted: the order the API pages in."""
        self.limits = limits or Limits()
        self._new_nodes = NodeRate(self.limits.new_nodes_per_minute, clock)

    # --- reading -------------------------------------------------------------
    def get(self, node_id: str) -> Node | None:
        """The node with that canonical id, or None."""
        return self._nodes.get(node_id)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    def __len__(self) -> int:
        return len(self._nodes)

    def nodes_after(self, node_id: str | None = None) -> Iterator[Node]:
        """The nodes whose id sorts after ``node_id`` (all with None), in id order: a page's candidates.

        Consume it without yielding to the event loop in between (a node registered or removed
        meanwhile would shift the position it walks).
        """
        order, nodes = self._order, self._nodes
        start = 0 if node_id is None else bisect_right(order, node_id)
        for index in range(start, len(order)):
            yield nodes[order[index]]

    def count_by_status(self) -> dict[str, int]:
        """How many nodes are in each status."""
        counts: dict[str, int] = {}
        for node in self._nodes.values():
            counts[node.status] = counts.get(node.status, 0) + 1
        return counts

    # --- nodes ---------------------------------------------------------------
    def get_or_register(
        self, node_id: str, *, name: str | None = None, ts: float | None = None, limited: bool = True
    ) -> Node:
        """Return the node, registering it (and firing ``node_registered``) the first time it is seen.

        ``node_id`` must already be canonical (see :mod:`hub.core.mac`).  A new node past
        ``max_nodes`` or ``new_nodes_per_minute`` raises :class:`~hub.core.errors.LimitExceeded`;
        ``limited=False`` is for nodes the operator named (config.yaml's ``nodes:``).
        """
        node = self._nodes.get(node_id)
        if node is not None:
            return node
        if limited:
            if len(self._nodes) >= self.limits.max_nodes:
                raise LimitExceeded(
                    REASON_NODE_LIMIT, f"new node {node_id} refused: max_nodes {self.limits.max_nodes} reached"
                )
            if not self._new_nodes.take():
                raise LimitExceeded(
                    REASON_NODE_RATE,
                    f"new node {node_id} refused: more than new_nodes_per_minute "
                    f"{self.limits.new_nodes_per_minute}; it registers on a later message",
                )
        now = self._clock() if ts is None else ts
        node = Node(node_id=node_id, name=name or node_id, first_seen=now)
        self._nodes[node_id] = node
        insort(self._order, node_id)
        registered: NodeRegisteredData = {"node_id": node_id, "node": node.as_dict()}
        self._bus.fire(EVENT_NODE_REGISTERED, registered)
        return node

    def update_node(self, node: Node, **changes: Any) -> dict[str, Any]:
        """Change name, description, firmware_version, area, tags and/or attributes; returns what changed.

        ``attributes`` is merged into the existing ones; ``tags`` replaces the node's tags.
        ``area`` (None: no area) and ``tags`` are normalised (:mod:`hub.core.labels`) and a
        bad one raises ValueError before anything changes, as do attributes past the limits
        (:class:`~hub.core.errors.LimitExceeded`, a separate error; :func:`hub.fit_attributes`
        keeps what fits).  Fires ``node_updated`` only when something really changed, so a node
        that repeats its firmware version costs nothing.
        """
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"cannot update node fields: {', '.join(sorted(unknown))}")
        if "area" in changes:
            changes["area"] = normalize_area(changes["area"])
        if "tags" in changes:
            changes["tags"] = normalize_tags(changes["tags"])
        if changes.get("attributes"):
            check_attributes(node.attributes, changes["attributes"], self.limits, f"node {node.node_id}")
        changed: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "attributes":
                delta = {k: v for k, v in value.items() if node.attributes.get(k, _MISSING) != v}
                if delta:
                    node.attributes.update(delta)
                    changed["attributes"] = delta
            elif getattr(node, key) != value:
                setattr(node, key, value)
                changed[key] = list(value) if key == "tags" else value
        if changed:
            updated: NodeUpdatedData = {"node_id": node.node_id, "changes": changed}
            self._bus.fire(EVENT_NODE_UPDATED, updated)
        return changed

    def remove(self, node_id: str) -> bool:
        """Forget a node; True if it existed."""
        if self._nodes.pop(node_id, None) is None:
            return False
        del self._order[bisect_right(self._order, node_id) - 1]
        removed: NodeRemovedData = {"node_id": node_id}
        self._bus.fire(EVENT_NODE_REMOVED, removed)
        return True

    def restore(self, nodes: Iterable[Node]) -> None:
        """Load nodes saved by storage at startup, without firing events (nothing new happened)."""
        added = []
        for node in nodes:
            if node.node_id not in self._nodes:
                added.append(node.node_id)
            self._nodes[node.node_id] = node
        if len(added) <= 16:  # a few (the fan-out and presence's leader restore nodes one at a time)
            for node_id in added:
                insort(self._order, node_id)
        else:  # storage's restore at start: one sorted run plus the new ids, merged by timsort
            self._order.extend(added)
            self._order.sort()

    # --- entities and states (hot path) ----------------------------------------
    def ensure_entity(
        self,
        node: Node,
        key: str,
        platform: str = "sensor",
        *,
        name: str | None = None,
        unit: str | None = None,
        device_class: str | None = None,
        state_class: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Entity:
        """Return the node's entity ``key``, creating it (and firing ``entity_registered``) if new.

        A new entity past ``max_entities_per_node``, or with more or larger attributes than the
        limits allow, raises :class:`~hub.core.errors.LimitExceeded`.
        """
        entity = node.entities.get(key)
        if entity is not None:
            return entity
        limits = self.limits
        if len(node.entities) >= limits.max_entities_per_node:
            raise LimitExceeded(
                REASON_ENTITY_LIMIT,
                f"entity {key[:64]!r} of {node.node_id} refused: max_entities_per_node {limits.max_entities_per_node}",
            )
        if attributes:
            check_attributes({}, attributes, limits, f"entity {key[:64]!r} of {node.node_id} refused")
        entity = Entity(
            key=key,
            platform=platform,
            name=name or key.replace("_", " ").capitalize(),
            unit=unit,
            device_class=device_class,
            state_class=state_class,
            attributes=dict(attributes or {}),
        )
        node.entities[key] = entity
        registered: EntityRegisteredData = {"node_id": node.node_id, "entity": entity.as_dict()}
        self._bus.fire(EVENT_ENTITY_REGISTERED, registered)
        return entity

    def remove_entity(self, node: Node, key: str) -> bool:
        """Forget the node's entity ``key`` (storage deletes its row, its readings stay); True if it existed."""
        if node.entities.pop(key, None) is None:
            return False
        removed: EntityRemovedData = {"node_id": node.node_id, "key": key}
        self._bus.fire(EVENT_ENTITY_REMOVED, removed)
        return True

    def report_states(
        self,
        node: Node,
        states: dict[str, Any],
        ts: float,
        *,
        dedupe: int | None = None,
        received: float | None = None,
    ) -> None:
        """Record one message's readings: every key must already be an entity (see :meth:`ensure_entity`).

        ``ts`` is when the node measured (its own clock if it sent one), ``received`` when the hub
        got it (defaults to now; drives ``last_seen``).  ``dedupe`` identifies a message that may be
        redelivered so storage keeps it once: a redelivery repeats the message's own time, so storage
        checks the key with ``ts``, except where ``ts`` is ``received`` (the message had no time of its
        own; a redelivery is stamped anew): pass the same value for both then, and storage checks the
        key alone.  Fires one ``state_reported`` and one ``state_changed`` per entity whose value differs.
        """
        seen = node.last_seen = self._clock() if received is None else received
        entities = node.entities
        track_changes = self._bus.has_listeners(EVENT_STATE_CHANGED)
        for key, value in states.items():
            entity = entities[key]
            old = entity.state
            entity.last_reported = ts
            if old != value or entity.last_changed is None:
                entity.state = value
                entity.last_changed = ts
                if track_changes:
                    changed: StateChangedData = {
                        "node_id": node.node_id,
                        "key": key,
                        "old_state": old,
                        "new_state": value,
                        "ts": ts,
                    }
                    self._bus.fire(EVENT_STATE_CHANGED, changed)
        reported: StateReportedData = {"node_id": node.node_id, "ts": ts, "states": states, "dedupe": dedupe}
        self._bus.fire(EVENT_STATE_REPORTED, reported, seen)  # fired when received: no second clock reading

    # --- availability and status -------------------------------------------------
    def report_availability(self, node: Node, online: bool, ts: float | None = None) -> None:
        """Pass on what the node (or its Last Will) said about being online; presence decides the status."""
        now = self._clock() if ts is None else ts
        if online:
            node.last_seen = now
        availability: AvailabilityReportedData = {"node_id": node.node_id, "online": online, "ts": now}
        self._bus.fire(EVENT_AVAILABILITY_REPORTED, availability)

    def set_status(self, node: Node, status: str, reason: str, ts: float | None = None) -> bool:
        """Set the node's status; fires ``node_status_changed`` and returns True only if it changed."""
        if node.status == status:
            return False
        now = self._clock() if ts is None else ts
        old = node.status
        node.status = status
        node.status_reason = reason
        node.status_since = now
        changed: NodeStatusChangedData = {
            "node_id": node.node_id,
            "old": old,
            "new": status,
            "reason": reason,
            "ts": now,
        }
        self._bus.fire(EVENT_NODE_STATUS_CHANGED, changed)
        return True


_MISSING = object()
