"""The event fan-out: what one process's registry learns reaches every other process's registry and WebSocket clients.

Publishing.  Sync bus listeners gather the events dashboards need (nodes
registered, updated, removed; entities; status changes; command updates) into
a list, and for readings only mark the node dirty (one dict store per message:
the hot path stays lean).  Every ``events: interval`` seconds (0.1 by default)
the gathered events, the dirty nodes' current entity states (coalesced: the
latest value per entity, however many messages came in between) and the
command answers this process consumed from ``<prefix>.acks`` go out as one
non-persistent message on the fanout exchange ``<prefix>.events``, with this
process's instance id in the ``hub-instance`` header.  While RabbitMQ is away
the gathered events are dropped (counted): they are in PostgreSQL already.

Consuming.  Every process binds an exclusive, auto-delete, server-named queue
to the exchange at each connection, bounded by ``x-max-length`` with
``x-overflow: drop-head``: a process that falls behind loses the oldest live
updates instead of memory.  Dropping is acceptable for a live view: every
fact is in PostgreSQL, written by the process that learnt it, and a client
re-fetches over the REST API.  A process skips its own messages (the header)
and applies the others' with :class:`.remote.RemoteEvents`, whose events carry
``origin`` so storage does not write them again and this fan-out does not
publish them again.

Resync.  While a process is disconnected its queue is gone and what the others
publish meanwhile is lost to it; so at every (re)connection, once its new queue
is bound, it reloads the fleet from PostgreSQL and applies the difference
(:mod:`.resync`), holding the fan-out messages that arrive meanwhile until
then.

Command answers.  In a split deployment the API instance that accepted a
command owns its lifecycle, but a worker consumes the node's answer from
``<prefix>.acks``.  The worker forwards each answer (topic and payload) in its
next batch; every process dispatches it to its own handlers, and the one
holding the command pending completes it (the others count it as an unknown
answer).  An answer lost with a fan-out message is not lost for good: the
command is sent again with the same id after ``ANSWER_TIMEOUT`` and the node
answers again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aio_pika.exceptions import AMQPError

from hub import (
    EVENT_AVAILABILITY_REPORTED,
    EVENT_COMMAND_UPDATED,
    EVENT_ENTITY_REGISTERED,
    EVENT_ENTITY_REMOVED,
    EVENT_NODE_REGISTERED,
    EVENT_NODE_REMOVED,
    EVENT_NODE_STATUS_CHANGED,
    EVENT_NODE_UPDATED,
    EVENT_STATE_REPORTED,
    Event,
    RateLimitedLogger,
    ServiceNotFound,
)

from .remote import ORIGIN, RemoteEvents
from .resync import ORIGIN_RESYNC, difference
from .topology import Topology

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

HEADER = "hub-instance"
"""AMQP header naming the process that published a fan-out message (so it skips its own)."""
PUBLISHED = (
    EVENT_NODE_REGISTERED,
    EVENT_NODE_UPDATED,
    EVENT_NODE_REMOVED,
    EVENT_ENTITY_REGISTERED,
    EVENT_ENTITY_REMOVED,
    EVENT_NODE_STATUS_CHANGED,
    EVENT_COMMAND_UPDATED,
)
"""The bus events a process publishes as they are (readings go coalesced, see the module docstring)."""
MAX_PER_MESSAGE = 2_000
"""Events (or nodes' states, or answers) per fan-out message, so one message stays small."""
MAX_GATHERED = 100_000
"""Events held between two publishes; beyond it the oldest go (only a RabbitMQ outage gets near it)."""
RESYNC_RETRY = 5.0
"""Seconds before a resync the database refused is tried again (while the connection lasts)."""


class EventFanout:
    """One process's part in the fan-out: gathers and publishes its events, consumes and applies the others'."""

    def __init__(self, hub: Hub, config: dict[str, Any]) -> None:
        self._hub = hub
        self._interval = config["events"]["interval"]
        self._max_length = config["events"]["max_length"]
        self.instance = uuid.uuid4().hex
        """This process's id in the ``hub-instance`` header and in ``origin``."""
        self._events: deque[tuple[str, Any]] = deque(maxlen=MAX_GATHERED)
        self._dirty: dict[str, None] = {}
        self._answers: list[tuple[str, str]] = []
        self._skip_removed: str | None = None
        self._remote = RemoteEvents(hub, self._set_skip_removal)
        self._channel: AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._held: deque[tuple[dict[str, Any], str]] | None = None
        """Fan-out batches that arrived during a resync (applied after it), or None when none runs."""
        self._log = RateLimitedLogger(_LOGGER)
        metrics = hub.metrics
        self._published = metrics.counter("rabbitmq_events_published", "Fan-out messages published")
        self._dropped = metrics.counter(
            "rabbitmq_events_dropped", "Gathered events not published (RabbitMQ away; they are in the database)"
        )
        self._resyncs = metrics.counter(
            "rabbitmq_resyncs", "Registry reloads from the database at a (re)connection to the event fan-out"
        )
        self._resync_changes = metrics.counter(
            "rabbitmq_resync_changes", "Changes a resync found the registry had missed (nodes, entities, states)"
        )
        bus = hub.bus
        self._unlisten = [bus.listen(event_type, self._on_event) for event_type in PUBLISHED]
        self._unlisten.append(bus.listen(EVENT_STATE_REPORTED, self._on_reading))
        self._unlisten.append(bus.listen(EVENT_AVAILABILITY_REPORTED, self._on_reading))

    # --- gathering (sync bus listeners; the reading one is on the hot path) ------------------
    def _on_event(self, event: Event[Any]) -> None:
        data = event.data
        if ORIGIN in data:
            return  # applied from another process: publishing it again would echo
        if event.event_type == EVENT_NODE_REMOVED and data["node_id"] == self._skip_removed:
            return
        self._events.append((event.event_type, data))

    def _on_reading(self, event: Event[Any]) -> None:
        self._dirty[event.data["node_id"]] = None

    def forward_answer(self, topic: str, body: bytes) -> None:
        """A node's command answer this process consumed: other processes get it with the next batch."""
        try:
            self._answers.append((topic, body.decode()))
        except UnicodeDecodeError:
            pass  # not an answer any handler accepts: the local handler already counted it

    def _set_skip_removal(self, node_id: str | None) -> None:
        self._skip_removed = node_id

    # --- lifecycle ------------------------------------------------------------------------
    async def connected(self, connection: AbstractConnection, topology: Topology) -> None:
        """At every (re)connection: a channel, this process's bounded queue bound to the exchange, consuming."""
        channel = await connection.channel(publisher_confirms=False)
        exchange = await channel.get_exchange(topology.events.name, ensure=False)
        queue = await channel.declare_queue(
            "",
            exclusive=True,
            auto_delete=True,
            arguments={"x-max-length": self._max_length, "x-overflow": "drop-head"},
        )
        await queue.bind(exchange)
        self._begin_resync()
        await queue.consume(self._on_message, no_ack=True)
        self._channel, self._exchange = channel, exchange

    # --- resync ---------------------------------------------------------------------------
    def _begin_resync(self) -> None:
        """Hold incoming batches and reload from the database (a resync already running starts over)."""
        if self._resync_task is not None:
            self._resync_task.cancel()
        held = self._held = deque(maxlen=self._max_length)
        self._resync_task = self._hub.create_task(self._resync(held), name="rabbitmq-resync")

    async def _resync(self, held: deque[tuple[dict[str, Any], str]]) -> None:
        try:
            while True:
                try:
                    stored = await self._hub.services.call("storage", "fleet")
                except ServiceNotFound:
                    return  # no storage in this process: nothing to reload from
                except Exception as err:  # noqa: BLE001 - unavailable, or a lock conflict (a deadlock with DDL)
                    self._log.warning("resync", "Cannot reload the fleet from the database (%s); retrying", err)
                    await asyncio.sleep(RESYNC_RETRY)
                    continue
                break
            batch = difference(self._hub.registry, stored, removals=not self._hub.role.takes_input)
            changes = len(batch["events"]) + len(batch["states"])
            self._remote.apply(batch, ORIGIN_RESYNC)
            self._resyncs.inc()
            self._resync_changes.inc(changes)
            _LOGGER.info("Event fan-out: registry reloaded from the database (%d change(s) missed)", changes)
        finally:
            if self._held is held:  # not superseded by the resync of a newer connection
                self._held = self._resync_task = None
            for held_batch, origin in held:
                self._remote.apply(held_batch, origin)

    def start(self) -> None:
        self._task = self._hub.create_task(self._run(), name="rabbitmq-events")

    async def stop(self) -> None:
        """Publish what is gathered (best effort), then stop listening and publishing."""
        for unlisten in self._unlisten:
            unlisten()
        for task in (self._task, self._resync_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._flush()
        self._channel = self._exchange = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._flush()

    # --- publishing -----------------------------------------------------------------------
    async def _flush(self) -> None:
        if not (self._events or self._dirty or self._answers):
            return
        events, self._events = list(self._events), deque(maxlen=MAX_GATHERED)
        dirty, self._dirty = self._dirty, {}
        answers, self._answers = self._answers, []
        states = self._states(dirty)
        exchange, channel = self._exchange, self._channel
        if exchange is None or channel is None or channel.is_closed:
            self._dropped.inc(len(events) + len(states) + len(answers))
            return
        for start in range(0, max(len(events), len(states), len(answers)), MAX_PER_MESSAGE):
            end = start + MAX_PER_MESSAGE
            batch = {"events": events[start:end], "states": states[start:end], "answers": answers[start:end]}
            message = aio_pika.Message(
                orjson.dumps(batch, default=str, option=orjson.OPT_NON_STR_KEYS),
                headers={HEADER: self.instance},
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
            )
            try:
                await exchange.publish(message, routing_key="")
            except (AMQPError, OSError, RuntimeError) as err:
                self._dropped.inc(len(events) - start)
                self._log.warning("publish", "Event fan-out not published (%s): the database has it", err)
                return
            self._published.inc()

    def _states(self, dirty: dict[str, None]) -> list[Any]:
        """The dirty nodes' last_seen and every entity's [state, last_changed, last_reported], as they are now."""
        registry = self._hub.registry
        states = []
        for node_id in dirty:
            node = registry.get(node_id)
            if node is not None:
                entities = {
                    key: (entity.state, entity.last_changed, entity.last_reported)
                    for key, entity in node.entities.items()
                }
                states.append((node_id, node.last_seen, entities))
        return states

    # --- consuming ------------------------------------------------------------------------
    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if (message.headers or {}).get(HEADER) == self.instance:
            return
        origin = str((message.headers or {}).get(HEADER) or "?")
        try:
            batch = orjson.loads(message.body)
            if not isinstance(batch, dict):
                raise TypeError("not an object")
        except (orjson.JSONDecodeError, TypeError) as err:
            self._log.warning("decode", "Dropped an undecodable fan-out message from %s: %s", origin, err)
            return
        if self._held is not None:
            self._held.append((batch, origin))  # a resync reads the database: applied after it, in order
            return
        self._remote.apply(batch, origin)
