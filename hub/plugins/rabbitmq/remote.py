"""Applying another process's fanned-out events to this process's registry, and re-firing them on its bus.

The other process already wrote these facts to PostgreSQL (the source of
truth); here they only keep the cache coherent and reach this process's
listeners (WebSocket clients, the command manager waiting for a node to come
back, presence).  Every event fired here carries ``origin`` (the sender's
instance id) in its data: storage skips such events (it must not write them a
second time) and the fan-out does not publish them again (no echo).  Removing a
node goes through ``registry.remove`` (it has no origin-aware form); storage's
delete is idempotent and the fan-out is told to skip that one event.

Coalesced states are applied as ``state_changed`` only (per entity whose value
differs), never as ``state_reported``: readings are stored by the worker that
received them, and a live view wants changes.  Only processes that serve HTTP
apply them (API instances, whose clients watch live readings): a worker's
registry needs no other worker's readings (the presence leader reads
``last_seen`` from the database), and applying them would cost every worker a
share of every other worker's load.  A status change older than the
one the node already has (``ts`` < ``status_since``) is stale and skipped, so
events crossing on the wire cannot turn a newer status back.

Bad input (a malformed event from a foreign or newer process) is counted and
logged, never raised: the rest of the batch is still applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hub import (
    EVENT_COMMAND_UPDATED,
    EVENT_ENTITY_REGISTERED,
    EVENT_ENTITY_REMOVED,
    EVENT_NODE_REGISTERED,
    EVENT_NODE_STATUS_CHANGED,
    EVENT_NODE_UPDATED,
    EVENT_STATE_CHANGED,
    Entity,
    Hub,
    Node,
    RateLimitedLogger,
)

_LOGGER = logging.getLogger(__name__)

ORIGIN = "origin"
"""Key in an event's data naming the process it came from (its fan-out instance id)."""

UPDATABLE = frozenset({"name", "description", "firmware_version", "area", "tags", "attributes"})
"""The node fields another process may change here (what a fan-out ``node_updated`` or a resync sets)."""


def node_from_dict(data: dict[str, Any]) -> Node:
    """A :class:`Node` from ``Node.as_dict()`` (entities included)."""
    fields = {key: value for key, value in data.items() if key != "entities"}
    entities = {entity["key"]: Entity(**entity) for entity in data.get("entities") or ()}
    return Node(**fields, entities=entities)


class RemoteEvents:
    """Applies decoded fan-out batches to ``hub.registry`` and fires them on ``hub.bus`` with ``origin``."""

    def __init__(self, hub: Hub, skip_removal: Callable[[str | None], None]) -> None:
        self._hub = hub
        self._live_states = hub.role.serves_http
        self._registry = hub.registry
        self._bus = hub.bus
        self._skip_removal = skip_removal
        self._log = RateLimitedLogger(_LOGGER)
        metrics = hub.metrics
        self._applied = metrics.counter("rabbitmq_events_applied", "Events from other hub processes applied here")
        self._rejected = metrics.counter(
            "rabbitmq_events_rejected", "Fanned-out events that could not be applied (malformed)"
        )
        self._appliers: dict[str, Callable[[dict[str, Any], str], None]] = {
            EVENT_NODE_REGISTERED: self._node_registered,
            EVENT_NODE_UPDATED: self._node_updated,
            "node_removed": self._node_removed,
            EVENT_ENTITY_REGISTERED: self._entity_registered,
            EVENT_ENTITY_REMOVED: self._entity_removed,
            EVENT_NODE_STATUS_CHANGED: self._status_changed,
            EVENT_COMMAND_UPDATED: self._command_updated,
        }

    def apply(self, batch: dict[str, Any], origin: str) -> None:
        """Apply one batch: its events in order, then its coalesced states (where HTTP is served), then dispatch its
        command answers."""
        for item in batch.get("events") or ():
            self._guard("event", self._event, item, origin)
        if self._live_states:
            for item in batch.get("states") or ():
                self._guard("states", self._states, item, origin)
        for item in batch.get("answers") or ():
            self._guard("answer", self._answer, item, origin)

    def _guard(self, what: str, apply: Callable[[Any, str], None], item: Any, origin: str) -> None:
        try:
            apply(item, origin)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            self._rejected.inc()
            self._log.warning(what, "Cannot apply a fanned-out %s from %s (%r): %s", what, origin, item, err)
        else:
            self._applied.inc()

    def _event(self, item: Any, origin: str) -> None:
        event_type, data = item
        applier = self._appliers.get(event_type)
        if applier is None:
            raise ValueError(f"unknown event type {event_type!r}")
        applier(data, origin)

    # --- the registry's events ------------------------------------------------------------
    def _node_registered(self, data: dict[str, Any], origin: str) -> None:
        node = node_from_dict(data["node"])
        if node.node_id in self._registry:
            return  # known already (restored from the database, or heard here too)
        self._registry.restore([node])
        self._bus.fire(EVENT_NODE_REGISTERED, {"node_id": node.node_id, "node": data["node"], ORIGIN: origin})

    def _node_updated(self, data: dict[str, Any], origin: str) -> None:
        node = self._registry.get(data["node_id"])
        if node is None:
            return
        changes = {key: value for key, value in data["changes"].items() if key in UPDATABLE}
        for key, value in changes.items():
            if key == "attributes":
                node.attributes.update(value)
            else:
                setattr(node, key, list(value) if key == "tags" else value)
        self._bus.fire(EVENT_NODE_UPDATED, {"node_id": node.node_id, "changes": changes, ORIGIN: origin})

    def _node_removed(self, data: dict[str, Any], origin: str) -> None:
        node_id = data["node_id"]
        self._skip_removal(node_id)
        try:
            self._registry.remove(node_id)
        finally:
            self._skip_removal(None)

    def _entity_registered(self, data: dict[str, Any], origin: str) -> None:
        node = self._registry.get(data["node_id"])
        entity = Entity(**data["entity"])
        if node is None or entity.key in node.entities:
            return
        node.entities[entity.key] = entity
        self._bus.fire(EVENT_ENTITY_REGISTERED, {"node_id": node.node_id, "entity": data["entity"], ORIGIN: origin})

    def _entity_removed(self, data: dict[str, Any], origin: str) -> None:
        node = self._registry.get(data["node_id"])
        if node is None or node.entities.pop(data["key"], None) is None:
            return
        self._bus.fire(EVENT_ENTITY_REMOVED, {"node_id": node.node_id, "key": data["key"], ORIGIN: origin})

    def _status_changed(self, data: dict[str, Any], origin: str) -> None:
        node = self._registry.get(data["node_id"])
        if node is None:
            return
        new, ts = str(data["new"]), float(data["ts"])
        if node.status == new or (node.status_since is not None and ts < node.status_since):
            return  # nothing new, or older than what this process knows: events may cross on the wire
        old = node.status
        node.status, node.status_reason, node.status_since = new, data["reason"], ts
        self._bus.fire(
            EVENT_NODE_STATUS_CHANGED,
            {"node_id": node.node_id, "old": old, "new": new, "reason": data["reason"], "ts": ts, ORIGIN: origin},
        )

    def _command_updated(self, data: dict[str, Any], origin: str) -> None:
        command = data["command"]
        if not isinstance(command, dict) or "id" not in command:
            raise ValueError("a command update without a command")
        self._bus.fire(EVENT_COMMAND_UPDATED, {"command": command, ORIGIN: origin})

    # --- coalesced readings and command answers ---------------------------------------------
    def _states(self, item: Any, origin: str) -> None:
        node_id, last_seen, states = item
        node = self._registry.get(node_id)
        if node is None:
            return
        if last_seen is not None and (node.last_seen is None or last_seen > node.last_seen):
            node.last_seen = float(last_seen)
        track = self._bus.has_listeners(EVENT_STATE_CHANGED)
        for key, (value, changed, reported) in states.items():
            entity = node.entities.get(key)
            if entity is None or (
                reported is not None and entity.last_reported is not None and reported < entity.last_reported
            ):
                continue
            entity.last_reported = reported
            old = entity.state
            if old != value or entity.last_changed is None:
                entity.state, entity.last_changed = value, changed
                if track:
                    self._bus.fire(
                        EVENT_STATE_CHANGED,
                        {
                            "node_id": node_id,
                            "key": key,
                            "old_state": old,
                            "new_state": value,
                            "ts": changed,
                            ORIGIN: origin,
                        },
                    )

    def _answer(self, item: Any, origin: str) -> None:
        """A node's answer another process consumed: handled here as if this process had received it."""
        topic, payload = item
        self._hub.messages.dispatch(str(topic), str(payload).encode(), False)
