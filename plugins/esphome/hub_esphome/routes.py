"""State and availability topics: one router subscription per topic, and the hot-path handler behind it.

Every entity that reads a topic is a *consumer* of it; the topic is subscribed
(``hub.messages.subscribe``) when its first consumer arrives and unsubscribed
when its last one leaves, however many entities share it (an ESPHome node's
``<node>/status`` serves all its entities' availability and its status binary
sensor; a zigbee2mqtt device's JSON topic all its sensors).  A message is
decoded once and parsed as JSON at most once, whatever its consumers.

Which messages count as what (see docs/architecture.md, "ESPHome"):

* **fresh** (live) states go through ``registry.report_states``: stored, and
  proof of life for presence; an entity with ``expire_after`` gets a deadline;
* **restored** states (``retained``: the broker replaying its copy when the hub
  subscribes) only set the entity's state, with the attribute ``restored: True``
  until a fresh value arrives, and fire ``state_changed``: no telemetry row (the
  value's age is unknown) and no proof of life (a dead node's retained state
  must not bring it online);
* states on a topic that is also an **availability** topic (ESPHome's status
  binary sensor on ``<node>/status``) are set the same quiet way: that topic
  carries the broker's Last Will, which is no message from the node;
* **availability** payloads go to ``registry.report_availability``, per node,
  combined over the node's availability topics by ``availability_mode``
  (``latest``, ``all``, ``any``); retained ones count like live ones (a retained
  ``offline`` is the Will that fired while the hub was away).

A topic is subscribed once, so the broker replays its retained copy once: to
the readers the topic had then.  An entity that starts reading a topic already
subscribed (ESPHome's status binary sensor on ``<node>/status``, which every
entity's availability subscribed first) would miss it, depending on whether its
config or that copy arrived first.  So each route keeps the last payload it
took, and a new reader whose entity has no state yet is given it the restored
way: the same outcome whatever the arrival order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from hub import EVENT_STATE_CHANGED, Entity, Node, Rejections, StateChangedData

from .contract import MAX_STATE_BYTES, REJECT_BAD_STATE, REJECT_TOO_LARGE
from .discovery import Availability, EntityConfig
from .states import INVALID, Converter, converter_for, wants_json
from .templates import MISSING, RAW, ValueTemplate, parse_template

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

RESTORED = "restored"
"""Entity attribute: the state came from the broker's retained copy, not from the device since the hub listens."""
EXPIRED = "expired"
"""Entity attribute: no fresh state within ``expire_after``; the state was set to None (unknown)."""

_WHOLE_JSON = ValueTemplate(json=True)


class StateConsumer:
    """One entity reading one state topic."""

    __slots__ = ("convert", "expire_after", "key", "node", "template")

    def __init__(self, node: Node, config: EntityConfig) -> None:
        """Raises :class:`~.templates.UnsupportedTemplate` when the entity's value template is out of reach."""
        self.node = node
        self.key = config.key
        template = parse_template(config.value_template)
        self.template = _WHOLE_JSON if template is RAW and wants_json(config) else template
        self.convert: Converter = converter_for(config)
        self.expire_after = config.expire_after


@dataclass(frozen=True, slots=True)
class _Entry:
    availability: Availability
    template: ValueTemplate


class AvailabilityTracker:
    """A node's availability topics (counted per entity using them) and what each last said."""

    __slots__ = ("entries", "mode", "node", "values")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.mode = "latest"
        self.entries: dict[str, dict[_Entry, int]] = {}
        self.values: dict[str, bool] = {}

    def combined(self, topic: str, value: bool) -> bool | None:
        """The node's availability after ``topic`` said ``value`` (None: not decided yet)."""
        self.values[topic] = value
        if self.mode == "latest" or len(self.entries) == 1:
            return value
        known = [self.values.get(name) for name in self.entries]
        if self.mode == "all":
            return False if False in known else True if None not in known else None
        return True if True in known else False if None not in known else None


class Route:
    """One subscribed topic and everyone reading it."""

    __slots__ = ("last", "needs_json", "states", "topic", "trackers", "unsubscribe")

    def __init__(self, topic: str, unsubscribe: Callable[[], None]) -> None:
        self.topic = topic
        self.unsubscribe = unsubscribe
        self.states: list[StateConsumer] = []
        self.trackers: list[AvailabilityTracker] = []
        self.needs_json = False
        self.last: str | None = None
        """The last payload taken (decoded), for readers that arrive after it (see the module docstring)."""

    def refresh(self) -> None:
        self.needs_json = any(c.template.json for c in self.states) or any(
            entry.template.json for tracker in self.trackers for entry in tracker.entries[self.topic]
        )


class Routes:
    """The topic table and its message handler (the ingest hot path for ESPHome states)."""

    def __init__(self, hub: Hub, rejections: Rejections) -> None:
        self._hub = hub
        self._registry = hub.registry
        self._bus = hub.bus
        self._clock = hub.clock
        self._rejections = rejections
        self._routes: dict[str, Route] = {}
        self._trackers: dict[str, AvailabilityTracker] = {}
        self._deadlines: dict[tuple[str, str], tuple[float, Node]] = {}
        self.subscriptions = hub.metrics.counter(
            "esphome_topic_subscriptions", "State and availability topics subscribed (each once, however shared)"
        )
        self._topics_gauge = hub.metrics.gauge("esphome_topics", "State and availability topics the hub listens to")

    def __contains__(self, topic: object) -> bool:
        return topic in self._routes

    # --- the table ------------------------------------------------------------------
    def _route(self, topic: str) -> Route:
        route = self._routes.get(topic)
        if route is None:
            unsubscribe = self._hub.messages.subscribe(topic, self.handle, qos=1)
            route = self._routes[topic] = Route(topic, unsubscribe)
            self.subscriptions.inc()
            self._topics_gauge.set(len(self._routes))
        return route

    def _release(self, route: Route) -> None:
        if not route.states and not route.trackers:
            route.unsubscribe()
            del self._routes[route.topic]
            self._topics_gauge.set(len(self._routes))
        else:
            route.refresh()

    def add_state(self, topic: str, consumer: StateConsumer) -> None:
        route = self._route(topic)
        route.states.append(consumer)
        route.refresh()
        if route.last is not None:
            self._replay(consumer, route.last)

    def _replay(self, consumer: StateConsumer, text: str) -> None:
        """Give a new reader the topic's last payload, restored, if its entity has no state yet."""
        node = consumer.node
        entity = node.entities.get(consumer.key)
        if entity is None or entity.last_changed is not None:
            return
        raw: Any = text
        if consumer.template.json:
            try:
                raw = consumer.template.extract(orjson.loads(text))
            except orjson.JSONDecodeError:
                return
            if raw is MISSING:
                return
        value = consumer.convert(raw)
        if value is not INVALID:
            self._set_quietly(node, entity, value, self._clock(), restored=True)

    def remove_state(self, topic: str, consumer: StateConsumer) -> None:
        route = self._routes.get(topic)
        if route is not None and consumer in route.states:
            route.states.remove(consumer)
            self._deadlines.pop((consumer.node.node_id, consumer.key), None)
            self._release(route)

    def add_availability(self, node: Node, entries: tuple[Availability, ...], mode: str) -> None:
        """An entity of ``node`` declares these availability topics (unsupported templates are ignored)."""
        tracker = self._trackers.get(node.node_id)
        if tracker is None:
            tracker = self._trackers[node.node_id] = AvailabilityTracker(node)
        tracker.mode = mode
        for availability in entries:
            entry = _entry(availability)
            if entry is None:
                continue
            counts = tracker.entries.setdefault(availability.topic, {})
            counts[entry] = counts.get(entry, 0) + 1
            route = self._route(availability.topic)
            if tracker not in route.trackers:
                route.trackers.append(tracker)
            route.refresh()

    def remove_availability(self, node: Node, entries: tuple[Availability, ...]) -> None:
        tracker = self._trackers.get(node.node_id)
        if tracker is None:
            return
        for availability in entries:
            entry = _entry(availability)
            counts = tracker.entries.get(availability.topic)
            if entry is None or counts is None or entry not in counts:
                continue
            counts[entry] -= 1
            if counts[entry] == 0:
                del counts[entry]
            if not counts:
                del tracker.entries[availability.topic]
                tracker.values.pop(availability.topic, None)
                route = self._routes.get(availability.topic)
                if route is not None and tracker in route.trackers:
                    route.trackers.remove(tracker)
                    self._release(route)
            else:
                route = self._routes.get(availability.topic)
                if route is not None:
                    route.refresh()
        if not tracker.entries:
            del self._trackers[node.node_id]

    # --- the hot path -----------------------------------------------------------------
    def handle(self, topic: str, payload: bytes, retained: bool) -> None:
        """A state or availability message: decode once, hand the value to every consumer of the topic."""
        route = self._routes.get(topic)
        if route is None:
            return  # unsubscribed while the message was under way
        if len(payload) > MAX_STATE_BYTES:
            self._rejections.reject(REJECT_TOO_LARGE, topic, f"{len(payload)} bytes > {MAX_STATE_BYTES}")
            return
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            self._rejections.reject(REJECT_BAD_STATE, topic, "not UTF-8")
            return
        route.last = text
        data: Any = MISSING
        if route.needs_json:
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                data = MISSING
        received = self._clock()
        for tracker in route.trackers:
            self._availability(tracker, topic, text, data, received)
        if route.states:
            self._states(route, text, data, retained or bool(route.trackers), retained, received)

    def _availability(self, tracker: AvailabilityTracker, topic: str, text: str, data: Any, ts: float) -> None:
        for entry in tracker.entries.get(topic, ()):
            value = text if not entry.template.json else entry.template.extract(data) if data is not MISSING else None
            if value is None or value is MISSING:
                continue
            value = str(value)
            if value == entry.availability.payload_available:
                online = True
            elif value == entry.availability.payload_not_available:
                online = False
            else:
                continue
            combined = tracker.combined(topic, online)
            if combined is not None:
                self._registry.report_availability(tracker.node, combined, ts)
            return

    def _states(self, route: Route, text: str, data: Any, quiet: bool, restored: bool, ts: float) -> None:
        reports: dict[str, tuple[Node, dict[str, Any]]] | None = None
        bad = False
        for consumer in route.states:
            if consumer.template.json:
                if data is MISSING:
                    bad = True
                    continue
                raw = consumer.template.extract(data)
                if raw is MISSING:
                    continue  # a JSON state that does not carry this entity's value this time
            else:
                raw = text
            value = consumer.convert(raw)
            if value is INVALID:
                bad = True
                continue
            node = consumer.node
            entity = node.entities.get(consumer.key)
            if entity is None:
                continue
            if quiet:
                self._set_quietly(node, entity, value, ts, restored)
                continue
            if reports is None:
                reports = {}
            pending = reports.get(node.node_id)
            if pending is None:
                pending = reports[node.node_id] = (node, {})
            pending[1][consumer.key] = value
            if consumer.expire_after is not None:
                self._deadlines[(node.node_id, consumer.key)] = (ts + consumer.expire_after, node)
        if reports:
            for node, states in reports.values():
                self._registry.report_states(node, states, ts, received=ts)
                for key in states:
                    attributes = node.entities[key].attributes
                    if RESTORED in attributes or EXPIRED in attributes:
                        attributes.pop(RESTORED, None)
                        attributes.pop(EXPIRED, None)
        if bad:
            self._rejections.reject(REJECT_BAD_STATE, route.topic, f"{text[:40]!r} fits none of its entities")

    def _set_quietly(self, node: Node, entity: Entity, value: Any, ts: float, restored: bool) -> None:
        """Change a state without a ``state_reported`` (see the module docstring)."""
        if restored:
            entity.attributes[RESTORED] = True
        else:
            entity.attributes.pop(RESTORED, None)
            entity.last_reported = ts
        self._change(node, entity, value, ts)

    def _change(self, node: Node, entity: Entity, value: Any, ts: float) -> None:
        old = entity.state
        if old == value and entity.last_changed is not None:
            return
        entity.state = value
        entity.last_changed = ts
        if self._bus.has_listeners(EVENT_STATE_CHANGED):
            changed: StateChangedData = {
                "node_id": node.node_id,
                "key": entity.key,
                "old_state": old,
                "new_state": value,
                "ts": ts,
            }
            self._bus.fire(EVENT_STATE_CHANGED, changed)

    # --- expire_after ---------------------------------------------------------------------
    def expire(self, now: float) -> int:
        """Set the states of entities silent past their ``expire_after`` to None (unknown); returns how many."""
        due = [key for key, (deadline, _node) in self._deadlines.items() if deadline <= now]
        for node_id, key in due:
            _deadline, node = self._deadlines.pop((node_id, key))
            entity = node.entities.get(key)
            if entity is not None:
                entity.attributes[EXPIRED] = True
                self._change(node, entity, None, now)
        return len(due)

    def forget_node(self, node_id: str) -> None:
        """A removed node: its consumers and trackers go (its routes stay only for other nodes' consumers)."""
        for route in list(self._routes.values()):
            route.states = [c for c in route.states if c.node.node_id != node_id]
            route.trackers = [t for t in route.trackers if t.node.node_id != node_id]
            self._release(route)
        self._trackers.pop(node_id, None)
        for key in [key for key in self._deadlines if key[0] == node_id]:
            del self._deadlines[key]


def _entry(availability: Availability) -> _Entry | None:
    try:
        return _Entry(availability, parse_template(availability.value_template))
    except ValueError:
        _LOGGER.debug("Availability template %r is not supported; topic %s ignored", availability, availability.topic)
        return None
