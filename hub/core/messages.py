"""The message router: topic subscriptions for plugins, independent of the transport that carries them.

Integrations that understand a topic contract (``devices/+/data``,
``homeassistant/#``) subscribe here with a plain function; a transport plugin
(today the built-in MQTT one) subscribes the broker to the same filters, feeds
every inbound message to :meth:`MessageRouter.dispatch`, and offers
:meth:`MessageRouter.publish` to send.  So a node contract does not depend on
the transport that carries it, and the core never imports an MQTT library.

Filters use MQTT syntax: ``+`` matches one level, a trailing ``#`` any number.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Protocol

from .errors import HubStateError
from .ratelimit import RateLimitedLogger

_LOGGER = logging.getLogger(__name__)

ROUTE_CACHE_SIZE = 65_536
"""Topics whose matching subscriptions are remembered (a fleet of N nodes uses a few N topics)."""

MessageHandler = Callable[[str, bytes, bool], None]
"""handler(topic, payload, retained): synchronous and fast; it runs on the ingest hot path."""


class Transport(Protocol):
    """What a transport plugin hands the router so plugins can publish and subscribe."""

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool, confirm: bool = False) -> None:
        """Send one message; raise if it cannot be handed to the broker.

        With ``confirm`` return only once the broker acknowledged it (MQTT PUBACK, AMQP confirm).
        """

    def subscribe(self, topic_filter: str, qos: int) -> None:
        """Make the broker deliver ``topic_filter`` (called for filters added while connected)."""


def validate_filter(topic_filter: str) -> list[str]:
    """Split an MQTT topic filter into levels, raising ValueError if ``+``/``#`` are misplaced."""
    if not topic_filter:
        raise ValueError("empty topic filter")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"'#' must be a whole last level: {topic_filter!r}")
        if "+" in level and level != "+":
            raise ValueError(f"'+' must be a whole level: {topic_filter!r}")
    return levels


def topic_matches(levels: list[str], topic_levels: list[str]) -> bool:
    """True when a topic (split into levels) matches a filter (split by :func:`validate_filter`)."""
    for index, level in enumerate(levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(levels) == len(topic_levels)


class _Subscription:
    __slots__ = ("exact", "handler", "levels", "qos", "seq", "topic_filter")

    def __init__(self, topic_filter: str, handler: MessageHandler, qos: int, seq: int) -> None:
        self.topic_filter = topic_filter
        self.levels = validate_filter(topic_filter)
        self.handler = handler
        self.qos = qos
        self.seq = seq
        """Subscription order: the handlers of one message run in the order they subscribed."""
        self.exact = "+" not in self.levels and "#" not in self.levels


class MessageRouter:
    """Subscriptions by topic filter, dispatch of inbound messages, and publishing through the transport."""

    def __init__(self) -> None:
        self._subscriptions: dict[int, _Subscription] = {}
        """Every subscription by its sequence number: adding and removing one costs O(1), however many there are
        (the ESPHome plugin subscribes a state and an availability topic per entity, tens of thousands in a fleet)."""
        self._exact: dict[str, tuple[_Subscription, ...]] = {}
        """Subscriptions without wildcards by topic: plugins may hold thousands (one per device topic)."""
        self._wildcards: tuple[_Subscription, ...] = ()
        self._seq = 0
        self._route_cache: dict[str, tuple[_Subscription, ...]] = {}
        self._transport: Transport | None = None
        self._log = RateLimitedLogger(_LOGGER)
        self.unmatched = 0
        """Messages that no subscription wanted (a broker delivering more than asked)."""
        self.handler_errors = 0
        """Exceptions raised by handlers; each is logged (rate-limited) and the message counted here."""

    # --- plugins ---------------------------------------------------------------
    def subscribe(self, topic_filter: str, handler: MessageHandler, *, qos: int = 1) -> Callable[[], None]:
        """Call ``handler(topic, payload, retained)`` for each message matching ``topic_filter``.

        The handler must be a plain function: it runs inline on the ingest path, where a
        coroutine would be created and never awaited (the message silently lost).
        """
        if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(type(handler).__call__):
            raise TypeError(f"message handlers must be plain functions, not coroutines: {handler!r}")
        self._seq += 1
        subscription = _Subscription(topic_filter, handler, qos, self._seq)
        self._subscriptions[subscription.seq] = subscription
        self._index(subscription, add=True)
        if self._transport is not None:
            self._transport.subscribe(topic_filter, qos)

        def unsubscribe() -> None:
            if self._subscriptions.pop(subscription.seq, None) is not None:
                self._index(subscription, add=False)

        return unsubscribe

    def _index(self, subscription: _Subscription, *, add: bool) -> None:
        """Keep the exact/wildcard indexes and the route cache in step with one subscription coming or going.

        An exact filter can only change the route of its own topic, so only that
        cache entry goes; a wildcard may change any, so the cache is cleared.
        """
        topic_filter = subscription.topic_filter
        if subscription.exact:
            current = self._exact.get(topic_filter, ())
            updated = (*current, subscription) if add else tuple(s for s in current if s is not subscription)
            if updated:
                self._exact[topic_filter] = updated
            else:
                self._exact.pop(topic_filter, None)
            self._route_cache.pop(topic_filter, None)
        else:
            self._wildcards = (
                (*self._wildcards, subscription) if add else tuple(s for s in self._wildcards if s is not subscription)
            )
            self._route_cache.clear()

    async def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False, confirm: bool = False
    ) -> None:
        """Publish through the active transport; HubStateError when none is connected.

        ``confirm`` (QoS 1): return once the broker acknowledged the message, which is what
        "delivered" means for a command.
        """
        if self._transport is None:
            raise HubStateError("no message transport is running (is the mqtt plugin loaded?)")
        data = payload.encode() if isinstance(payload, str) else payload
        if confirm:
            await self._transport.publish(topic, data, qos, retain, confirm=True)
        else:
            await self._transport.publish(topic, data, qos, retain)

    # --- transports ----------------------------------------------------------------
    def attach(self, transport: Transport) -> Callable[[], None]:
        """A transport announces itself; returns the function that detaches it."""
        self._transport = transport

        def detach() -> None:
            if self._transport is transport:
                self._transport = None

        return detach

    @property
    def has_transport(self) -> bool:
        """True once a transport attached: another transport plugin (mqtt after rabbitmq) then stands aside."""
        return self._transport is not None

    def filters(self) -> dict[str, int]:
        """Every subscribed filter with the highest QoS asked for it (what the transport subscribes to)."""
        result: dict[str, int] = {}
        for subscription in self._subscriptions.values():
            result[subscription.topic_filter] = max(subscription.qos, result.get(subscription.topic_filter, 0))
        return result

    def dispatch(self, topic: str, payload: bytes, retained: bool = False) -> int:
        """Hand one inbound message to every matching handler; returns how many handled it."""
        matching = self._route_cache.get(topic)
        if matching is None:
            matching = self._match(topic)
        for subscription in matching:
            try:
                subscription.handler(topic, payload, retained)
            except Exception:  # isolation: a buggy handler must not take the transport down
                self.handler_errors += 1
                self._log.log(
                    logging.ERROR,
                    subscription.topic_filter,
                    "Handler for %s failed on topic %r",
                    subscription.topic_filter,
                    topic,
                    exc_info=True,
                )
        if not matching:
            self.unmatched += 1
        return len(matching)

    def _match(self, topic: str) -> tuple[_Subscription, ...]:
        """The subscriptions matching ``topic``, remembered: a fleet publishes on the same topics over and over."""
        matching = self._exact.get(topic, ())
        if self._wildcards:
            topic_levels = topic.split("/")
            wild = tuple(s for s in self._wildcards if topic_matches(s.levels, topic_levels))
            if wild:
                matching = tuple(sorted((*matching, *wild), key=_by_seq)) if matching else wild
        if len(self._route_cache) >= ROUTE_CACHE_SIZE:
            self._route_cache.clear()  # bounded: a flood of distinct (bad) topics costs matching, never memory
        self._route_cache[topic] = matching
        return matching


def _by_seq(subscription: _Subscription) -> int:
    return subscription.seq
