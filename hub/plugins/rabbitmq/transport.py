"""The RabbitMQ transport: consume the ingest queues into ``hub.messages``, acknowledge after commit, publish confirmed.

Deliveries come through a connection of their own, :mod:`.consumer` (a lean AMQP
consumer: aiormq's per-frame and per-message machinery was most of a worker's
CPU).  Per delivered message (the hot path), inline as the socket's bytes are
parsed: the routing key turned back into the MQTT topic the node published
(``devices.X.data`` -> ``devices/X/data``) is handed to
``hub.messages.dispatch`` with the body, then the message's
delivery tag into the acknowledgement group of the storage batch it went into
(``hub.durability.barrier()``).  When that batch commits, one ``basic.ack``
with ``multiple`` acknowledges the whole group (batches commit in order and
tags grow in dispatch order, so the highest tag covers exactly the committed
messages).  If the batch fails, the group is rejected back to the queue.

A message a handler raised on (a bug, not bad input: contract plugins count and
drop bad input) is rejected back to its queue; after ``delivery_limit``
deliveries the quorum queue dead-letters it instead of handing it out again, so
a poison message ends up in ``<prefix>.dead-letter`` and never loops.  A worker
killed mid-batch leaves its unacknowledged messages with the broker, which
hands them to another worker; those that had been committed are dropped by
storage's ``(node, dedupe)`` key.

Around that: a supervisor that connects (aio-pika), declares the topology
(:mod:`.topology`), consumes (in roles that take input) and reconnects with
backoff when either connection is lost; publishing with publisher confirms for
commands; and a stop that first cancels the consumers, lets in-flight messages
get their commit and acknowledgement, then closes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import aio_pika
from aio_pika.abc import AbstractChannel
from aio_pika.exceptions import AMQPError, DeliveryError

from hub import (
    EVENT_TRANSPORT_CONNECTED,
    EVENT_TRANSPORT_DISCONNECTED,
    HubError,
    HubStateError,
    RateLimitedLogger,
    StartupError,
    TransportData,
)

from .config import covers, display_url, routing_key
from .consumer import LeanConsumer
from .topology import Topology, TopologyConflict, declare

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

_RABBITMQ: TransportData = {"transport": "rabbitmq"}


class RabbitTransport:
    """The hub's connection to RabbitMQ; attached to ``hub.messages`` as its transport."""

    def __init__(self, hub: Hub, config: dict[str, Any]) -> None:
        self._hub = hub
        self._config = config
        self._url = config["url"]
        self.display = display_url(self._url)
        self._consume = hub.role.takes_input
        self._router = hub.messages
        self._dispatch = hub.messages.dispatch
        self._barrier = hub.durability.barrier
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._publish_exchange: aio_pika.abc.AbstractExchange | None = None
        self.topology: Topology | None = None
        self._groups: dict[asyncio.Future[None], _AckGroup] = {}
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True
        self._stopping = False
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._consumer: LeanConsumer | None = None
        self._warned_filters: set[str] = set()
        self._on_connected: list[Any] = []
        self.forward_answer: Callable[[str, bytes], None] | None = None
        """Given every message consumed from the acks queue (topic, body): the event fan-out's forwarder."""
        self._log = RateLimitedLogger(_LOGGER)
        self.connected = False
        self._detach = hub.messages.attach(self)
        metrics = hub.metrics
        self._connected_gauge = metrics.gauge("rabbitmq_connected", "1 while the hub is connected to RabbitMQ")
        self._received = metrics.counter("rabbitmq_messages_received", "Messages taken from the ingest queues")
        self._rejected = metrics.counter(
            "rabbitmq_messages_rejected",
            "Messages returned to their queue: storage did not commit them, or a handler raised (poison)",
            ["reason"],
        )

    # --- lifecycle -------------------------------------------------------------------------
    def on_connected(self, callback: Any) -> None:
        """Call ``await callback(connection, topology)`` after every (re)connection (the event fan-out uses it)."""
        self._on_connected.append(callback)

    async def start(self) -> None:
        """Connect and declare once (a refused login or a conflicting queue raises StartupError), then supervise."""
        try:
            await self._connect_once()
        except TopologyConflict:
            await self._close_connection()
            raise
        except aio_pika.exceptions.ProbableAuthenticationError as err:
            raise StartupError(f"RabbitMQ {self.display} refused the hub's login: {err}") from None
        except (OSError, AMQPError, TimeoutError) as err:
            await self._close_connection()
            _LOGGER.warning("Cannot connect to RabbitMQ %s (%s); retrying in the background", self.display, err)
        self._check_filters()
        self._supervisor = self._hub.create_task(self._supervise(), name="rabbitmq-supervisor")

    async def stop(self) -> None:
        """Stop taking messages, let in-flight ones reach their commit and ack, then close."""
        self._accepting = False
        self._stopping = True
        if self._consumer is not None:
            try:
                await self._consumer.cancel()
            except (TimeoutError, ConnectionError):
                pass  # closed meanwhile: the broker takes back what was not acknowledged
        if self._inflight:
            try:
                async with asyncio.timeout(self._config["stop_timeout"]):
                    await self._idle.wait()
            except TimeoutError:
                _LOGGER.warning(
                    "%d RabbitMQ messages still wait for storage: leaving them to the broker", self._inflight
                )
        for _ in range(3):
            await asyncio.sleep(0)  # the last commit callbacks send their acks
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        await self._close_connection()
        self._detach()

    # --- connecting ------------------------------------------------------------------------
    async def _connect_once(self) -> None:
        self._lost.clear()
        connection = await aio_pika.connect(self._url, timeout=10, client_properties={"connection_name": self._name()})
        self._connection = connection
        connection.close_callbacks.add(self._connection_closed)
        channel = await connection.channel(publisher_confirms=False)
        self.topology = await declare(connection, channel, self._config)
        self._publish_channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._publish_exchange = await self._publish_channel.get_exchange(self._config["exchange"], ensure=False)
        if self._consume:
            queues = {
                queue.name: self._on_answer if kind == "acks" else self._on_message
                for kind, queue in self.topology.queues.items()
            }
            self._consumer = await LeanConsumer.connect(
                self._url, self._name() + " consumer", self._config["prefetch"], queues, self._consumer_lost
            )
        for callback in self._on_connected:
            await callback(connection, self.topology)
        self.connected = True
        self._connected_gauge.set(1)
        self._hub.bus.fire(EVENT_TRANSPORT_CONNECTED, _RABBITMQ)
        _LOGGER.info(
            "Connected to RabbitMQ %s (%s)",
            self.display,
            "consuming " + ", ".join(q.name for q in self.topology.queues.values()) if self._consume else "publishing",
        )

    def _name(self) -> str:
        return f"hub {self._hub.config['hub']['name']} ({self._hub.role})"

    def _connection_closed(self, _connection: Any, exc: BaseException | None = None) -> None:
        if self.connected:
            self.connected = False
            self._connected_gauge.set(0)
            self._hub.bus.fire(EVENT_TRANSPORT_DISCONNECTED, _RABBITMQ)
            if not self._stopping:
                _LOGGER.warning("Lost RabbitMQ %s (%s): reconnecting", self.display, exc)
        self._lost.set()

    def _consumer_lost(self, exc: BaseException | None) -> None:
        self._connection_closed(None, exc)

    async def _close_connection(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.close()
        connection, self._connection = self._connection, None
        self._publish_channel = self._publish_exchange = None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except (AMQPError, OSError, RuntimeError):
                pass
        if self.connected:
            self._connection_closed(connection)

    async def _supervise(self) -> None:
        delay = self._config["reconnect"]["min_delay"]
        failures = 0
        while not self._stopping:
            if self.connected:
                await self._lost.wait()
                delay = self._config["reconnect"]["min_delay"]
                continue
            await self._close_connection()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._config["reconnect"]["max_delay"])
            try:
                await self._connect_once()
                failures = 0
            except TopologyConflict as err:
                self._log.error("topology", "%s", err)
            except (OSError, AMQPError, TimeoutError) as err:  # ConnectionError (the consumer's) is an OSError
                failures += 1
                _LOGGER.debug("Reconnecting to RabbitMQ %s failed (%d): %s", self.display, failures, err)

    # --- ingest (hot path) -----------------------------------------------------------------
    def _on_message(self, consumer: LeanConsumer, tag: int, topic: str, body: bytes) -> None:
        """One delivery, called inline by the consumer in delivery order."""
        if not self._accepting:
            return  # not acknowledged: the broker takes it back when the connection closes
        router = self._router
        errors = router.handler_errors
        try:
            self._dispatch(topic, body, False)
        except Exception:
            errors = -1
            self._log.log(logging.ERROR, "dispatch", "Cannot dispatch %r", topic, exc_info=True)
        if router.handler_errors != errors:
            self._reject(consumer, tag, "poison", multiple=False)
            return
        barrier = self._barrier()
        if barrier is None:
            self._settle(consumer, tag, multiple=False)
            self._received.inc()
            return
        group = self._groups.get(barrier)
        if group is None or group.channel is not consumer:
            group = self._groups[barrier] = _AckGroup(consumer)
            barrier.add_done_callback(partial(self._commit_done, group))
        group.last = tag
        group.count += 1
        if not self._inflight:
            self._idle.clear()
        self._inflight += 1

    def _on_answer(self, consumer: LeanConsumer, tag: int, topic: str, body: bytes) -> None:
        """A message from the acks queue: handled here, and forwarded to the process that owns the command."""
        forward = self.forward_answer
        if forward is not None and self._accepting:
            forward(topic, body)
        self._on_message(consumer, tag, topic, body)

    def _commit_done(self, group: _AckGroup, barrier: asyncio.Future[None]) -> None:
        if self._groups.get(barrier) is group:
            del self._groups[barrier]
        self._inflight -= group.count
        self._received.inc(group.count)
        if not self._inflight:
            self._idle.set()
        failed = barrier.cancelled() or barrier.exception() is not None
        if failed:
            self._reject(group.channel, group.last, "not_committed", multiple=True, count=group.count)
        else:
            self._settle(group.channel, group.last, multiple=True)

    @staticmethod
    def _settle(consumer: LeanConsumer, tag: int | None, *, multiple: bool) -> None:
        if tag is not None:
            consumer.ack(tag, multiple=multiple)  # nothing once that connection is gone: the broker redelivers

    def _reject(self, consumer: LeanConsumer, tag: int | None, reason: str, *, multiple: bool, count: int = 1) -> None:
        self._rejected.labels(reason).inc(count)
        if reason == "poison":
            self._log.warning(
                "poison", "A handler failed on a message: returned to its queue (dead-lettered after its limit)"
            )
        if tag is not None:
            consumer.nack(tag, multiple=multiple, requeue=True)

    # --- Transport (what hub.messages calls) ------------------------------------------------
    def subscribe(self, topic_filter: str, qos: int) -> None:
        """A plugin subscribed while running: say so if no queue carries it (queues are fixed by config)."""
        self._check_filters()

    def _check_filters(self) -> None:
        if self.topology is None or not self._consume:
            return
        for topic_filter in self._router.filters():
            if topic_filter in self._warned_filters:
                continue
            if not any(covers(binding, topic_filter) for binding in self.topology.filters):
                self._warned_filters.add(topic_filter)
                _LOGGER.warning(
                    "No RabbitMQ queue is bound for %r: add it to rabbitmq: queues: …: bindings: to receive it",
                    topic_filter,
                )

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool, confirm: bool = False) -> None:
        """Publish on the topic exchange as RabbitMQ's MQTT plugin would, confirmed by the broker.

        The MQTT plugin hands it to the MQTT clients subscribed to ``topic``; QoS 1 is a
        persistent message.  ``mandatory``: a message no queue takes (no node subscribed)
        raises HubError instead of vanishing, so a command stays queued.  ``retain`` cannot
        be honoured over AMQP (the MQTT plugin's retained store is MQTT-only): HubError.
        """
        if not topic or "+" in topic or "#" in topic:
            raise ValueError(f"cannot publish to {topic!r}: a topic is not empty and has no wildcards")
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        if retain:
            raise HubError("RabbitMQ cannot publish a retained MQTT message from AMQP")
        channel, exchange = self._publish_channel, self._publish_exchange
        if not self.connected or channel is None or channel.is_closed or exchange is None:
            raise HubStateError(f"not connected to RabbitMQ {self.display}: cannot publish to {topic!r}")
        message = aio_pika.Message(
            payload,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT if qos else aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        try:
            await exchange.publish(message, routing_key(topic), mandatory=True, timeout=self._config["confirm_timeout"])
        except DeliveryError as err:
            raise HubError(f"RabbitMQ did not take the message to {topic!r}: no queue is bound for it ({err})") from err
        except AMQPError as err:
            raise HubStateError(f"cannot publish to {topic!r} through RabbitMQ: {err}") from err


class _AckGroup:
    """The messages of one connection waiting for one batch's commit: how many, and the highest delivery tag."""

    __slots__ = ("channel", "count", "last")

    def __init__(self, channel: LeanConsumer) -> None:
        self.channel = channel
        self.count = 0
        self.last: int | None = None
