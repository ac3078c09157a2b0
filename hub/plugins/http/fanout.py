"""Event fan-out to WebSocket clients: one serialization per event, bytes copied to every subscriber.

Subscriptions are indexed by ``(event type or "*", node id or None)``, each
group an insertion-ordered dict, so adding or dropping one costs the same
whatever the group holds (a client closing with thousands of subscriptions
drops them in linear time, not quadratic).  The
fan-out listens on the bus (with a plain, synchronous listener) only for the
event types someone subscribed to, so with no WebSocket client it costs the
ingest path nothing, not even ``state_changed`` events the registry would
otherwise skip building.  An event that reaches at least one subscriber is
serialized once with orjson; each subscriber gets ``prefix + event + b"}"``,
where the prefix ``{"id":N,"type":"event","event":`` was built when it
subscribed.  Delivery is an append to the client's bounded queue (see
:class:`~.websocket.WsConnection`): the bus never waits for a socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson

from hub import MATCH_ALL, Event, EventBus, Metrics

_ABSENT = object()


class Sink(Protocol):
    """Where a subscription's messages go (a WebSocket connection)."""

    def send(self, data: bytes) -> None:
        """Queue one complete message; must not block."""


class Subscription:
    """One ``subscribe_events`` of one client."""

    __slots__ = ("event_type", "id", "node_id", "prefix", "sink")

    def __init__(self, sink: Sink, subscription_id: int, event_type: str, node_id: str | None) -> None:
        self.sink = sink
        self.id = subscription_id
        self.event_type = event_type
        self.node_id = node_id
        self.prefix = b'{"id":%d,"type":"event","event":' % subscription_id


def encode_event(event: Event) -> bytes:
    """The event as JSON (values JSON cannot hold are written as strings rather than failing)."""
    return orjson.dumps(event.as_dict(), default=str, option=orjson.OPT_NON_STR_KEYS)


class EventFanout:
    """See the module docstring."""

    def __init__(self, bus: EventBus, metrics: Metrics) -> None:
        self._bus = bus
        self._subs: dict[tuple[str, str | None], dict[Subscription, None]] = {}
        self._per_type: dict[str, int] = {}
        self._unlisten: dict[str, Callable[[], None]] = {}
        self._last_event: Event | None = None
        self._last_payload = b""
        self._encoded = metrics.counter("websocket_events_encoded", "Events serialized for WebSocket subscribers")

    def subscribe(self, sink: Sink, subscription_id: int, event_type: str, node_id: str | None) -> Subscription:
        """Start streaming events of ``event_type`` (``"*"`` for all), optionally of one node, to ``sink``."""
        sub = Subscription(sink, subscription_id, event_type, node_id)
        self._subs.setdefault((event_type, node_id), {})[sub] = None
        self._per_type[event_type] = self._per_type.get(event_type, 0) + 1
        if event_type not in self._unlisten:
            listener = self._on_any_event if event_type == MATCH_ALL else self._on_event
            self._unlisten[event_type] = self._bus.listen(event_type, listener)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop a subscription; the bus listener goes when its type has no subscriber left."""
        key = (sub.event_type, sub.node_id)
        group = self._subs.get(key)
        if group is None or group.pop(sub, _ABSENT) is _ABSENT:
            return
        if not group:
            del self._subs[key]
        self._per_type[sub.event_type] -= 1
        if not self._per_type[sub.event_type]:
            del self._per_type[sub.event_type]
            self._unlisten.pop(sub.event_type)()

    def close(self) -> None:
        """Drop every subscription and bus listener."""
        for unlisten in self._unlisten.values():
            unlisten()
        self._unlisten.clear()
        self._subs.clear()
        self._per_type.clear()

    def _on_event(self, event: Event) -> None:
        self._deliver(event, event.event_type)

    def _on_any_event(self, event: Event) -> None:
        self._deliver(event, MATCH_ALL)

    def _deliver(self, event: Event, type_key: str) -> None:
        data: Any = event.data
        node_id = data.get("node_id") if isinstance(data, dict) else None
        if not isinstance(node_id, str):
            node_id = None
        everyone = self._subs.get((type_key, None))
        of_node = self._subs.get((type_key, node_id)) if node_id is not None else None
        if not everyone and not of_node:
            return
        if event is not self._last_event:  # the type listener and the "*" listener share one encoding
            self._last_payload = encode_event(event)
            self._last_event = event
            self._encoded.inc()
        payload = self._last_payload
        for group in (everyone, of_node):
            if group:
                for sub in group:  # send() never (un)subscribes, so the group cannot change meanwhile
                    sub.sink.send(sub.prefix + payload + b"}")
