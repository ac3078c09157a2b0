"""The inbound side of the MQTT transport: dispatch each message, acknowledge a QoS 1 one only once it is committed.

Per inbound QoS 1 message (the hot path), inline in the client's packet reader:
hand it to ``hub.messages.dispatch`` (topic decoded once), then add its packet id
to the acknowledgement group of the storage batch it went into
(``hub.durability.barrier()``).  When that batch commits, one callback
acknowledges the whole group in one write; if it fails, nothing is acknowledged
and the broker redelivers.  No task, no log line, no lock per message.

Each connection is a *generation*: a group remembers the one its messages came in
on, and is acknowledged only on that one (a packet id means nothing on the next
connection).  The connection lifecycle (:mod:`.transport`) starts a generation
per connection and decides what a failed commit means for the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from hub import RateLimitedLogger

from .client import HubMqttClient

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)


class Inbound:
    """What the hub received on its MQTT connection and has not acknowledged yet; see the module docstring.

    ``on_not_committed(error, generation)`` is called when a batch holding messages of ``generation``
    failed to commit (their PUBACKs are withheld).
    """

    def __init__(self, hub: Hub, client: HubMqttClient, on_not_committed: Callable[[BaseException, int], None]) -> None:
        self._client = client
        self._on_not_committed = on_not_committed
        self._dispatch = hub.messages.dispatch
        self._barrier = hub.durability.barrier
        self._ack_groups: dict[asyncio.Future[None], _AckGroup] = {}
        self._last_group: _AckGroup | None = None
        """The group the previous message joined: the next one almost always joins it too (one batch)."""
        self._idle = asyncio.Event()
        self._idle.set()
        self.inflight = 0
        """QoS 1 messages dispatched and waiting for their batch's commit."""
        self.generation = 0
        """The current connection's number (0: never connected); acknowledgements go only to their own."""
        self.accepting = True
        """False once the transport stops: what still arrives is never acknowledged (the broker keeps it)."""
        self._log = RateLimitedLogger(_LOGGER)
        metrics = hub.metrics
        self._received = metrics.counter("mqtt_messages_received", "MQTT messages received by the hub")
        self._withheld = metrics.counter(
            "mqtt_acks_withheld", "QoS 1 messages left unacknowledged so the broker redelivers them (not committed)"
        )
        client.on_message = self.on_message
        client.on_qos1_message = self.on_qos1_message

    def next_generation(self) -> None:
        """A new connection (or the end of the last one): what is still waiting is never acknowledged on it."""
        self.generation += 1
        self._ack_groups = {}  # messages from now on are acknowledged in groups of their own
        self._last_group = None

    async def wait_idle(self) -> None:
        """Until every dispatched QoS 1 message has had its commit (acknowledged or withheld)."""
        await self._idle.wait()

    def on_message(self, client: HubMqttClient, topic: str, payload: bytes, qos: int, properties: dict) -> int:
        """QoS 0 messages: nothing to acknowledge, just dispatch."""
        if self.accepting:
            self._received.inc()
            try:
                self._dispatch(topic, payload, properties.get("retain") == 1)
            except Exception:  # e.g. a topic that is not UTF-8; handlers' own errors are isolated by the router
                self._log.log(logging.ERROR, "dispatch", "Cannot dispatch MQTT message on %r", topic, exc_info=True)
        return 0

    def on_qos1_message(self, mid: int, topic: str, payload: bytes, retained: bool) -> None:
        """The hot path: dispatch inline, then join the open batch's acknowledgement group (see module docstring)."""
        if not self.accepting:
            self._withheld.inc()
            return  # never acknowledged: the broker keeps it for the next run
        try:
            self._dispatch(topic, payload, retained)
        except Exception:  # e.g. a topic that is not UTF-8; handlers' own errors are isolated by the router
            self._log.log(logging.ERROR, "dispatch", "Cannot dispatch MQTT message on %r", topic, exc_info=True)
            self._received.inc()
            self._client.acknowledge([mid])  # a poison message: acknowledge, never loop on it
            return
        barrier = self._barrier()
        if barrier is None:
            self._received.inc()
            self._client.acknowledge([mid])
            return
        group = self._last_group
        if group is None or group.barrier is not barrier:
            group = self._ack_groups.get(barrier)
            if group is None:
                group = self._ack_groups[barrier] = _AckGroup(barrier, self.generation)
                barrier.add_done_callback(partial(self._commit_done, group))
            self._last_group = group
        group.mids.append(mid)
        if not self.inflight:
            self._idle.clear()
        self.inflight += 1

    def _commit_done(self, group: _AckGroup, barrier: asyncio.Future[None]) -> None:
        """A batch committed (or failed): acknowledge its messages on the connection they came in on, or withhold."""
        if self._ack_groups.get(barrier) is group:
            del self._ack_groups[barrier]
        if self._last_group is group:
            self._last_group = None
        self.inflight -= len(group.mids)
        self._received.inc(len(group.mids))  # counted per batch, not per message: off the hot path
        if not self.inflight:
            self._idle.set()
        error = barrier.exception() if not barrier.cancelled() else asyncio.CancelledError()
        if error is not None:
            self._withheld.inc(len(group.mids))
            self._on_not_committed(error, group.generation)
        elif group.generation != self.generation:
            self._withheld.inc(len(group.mids))  # that connection is gone: the broker redelivers them
        else:
            self._client.acknowledge(group.mids)


class _AckGroup:
    """The messages waiting for one batch's commit, and the connection generation they arrived on."""

    __slots__ = ("barrier", "generation", "mids")

    def __init__(self, barrier: asyncio.Future[None], generation: int) -> None:
        self.barrier = barrier
        self.generation = generation
        self.mids: list[int] = []
