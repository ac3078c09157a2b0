"""gmqtt's Client, adjusted where the hub's delivery guarantee and throughput need it.

How gmqtt 0.8 acknowledges (read from ``gmqtt/mqtt/handler.py``): with
``optimistic_acknowledgement=False`` and a coroutine ``on_message``, gmqtt wraps
every inbound QoS 1 message in a task and sends the PUBACK from that task's
done-callback, on whatever connection the client has *then*.  A task and a
callback per message were most of the hub's CPU at tens of thousands of
messages a second, and a callback that outlives its connection would
acknowledge some other message's packet id on the new one.

So :class:`HubMqttClient` takes QoS 1 messages inline
(:meth:`~HubMqttClient._handle_qos_1_publish_packet` calls the transport's
``on_qos1_message``) and the transport acknowledges a whole committed batch at
once with :meth:`~HubMqttClient.acknowledge`, after checking the batch's
messages arrived on the current connection.  A message that must not be
acknowledged is simply never acknowledged: the broker redelivers it.  (A PUBACK
carrying an error code would not do: the broker counts any PUBACK as delivery.)
The PUBACKs that become due together are written in one ``send`` instead of
one each.

The QoS 1 PUBLISH is also where gmqtt spends most of its time per message:
a ``Package`` per packet, a handler lookup, a debug log call, ``struct``
formats built per message and a full MQTT 5 property parse whose result the
hub never reads.  So each connection gets a lean packet reader
(:class:`LeanReader`): a QoS 1 PUBLISH without properties (what Mosquitto
forwards from nodes) goes straight from the socket buffer to
``on_qos1_message``; everything else (other packets, publishes carrying
properties such as a topic alias, a topic that is not UTF-8) takes gmqtt's own
path unchanged.

The reader also bounds one turn of the event loop.  gmqtt's read loop reads up to
64 KB at a time and, while asyncio's stream buffer holds more, reads again
without yielding: at saturated ingest one turn handled several hundred messages
(tens of milliseconds, every handler and listener included) while commits,
timers and the HTTP API waited.  So the reader hands over at most
:data:`PACKETS_PER_TURN` packets per call, fewer once it has used
:data:`TURN_SECONDS` of CPU (looked at every :data:`CHECK_EVERY` packets), and
leaves the rest in gmqtt's buffer; the connection's ``read`` then yields one
loop turn and reads nothing new, and the read loop hands the rest over on its
next turn.  Order is unchanged (the
buffer is consumed front to back), and so is backpressure: nothing more is read
from the socket until what is buffered has been handed over.

gmqtt's own reconnect loop (fixed delay, and after its sleep it reconnects
even if ``disconnect()`` was called meanwhile) is switched off by making
:meth:`HubMqttClient.reconnect` a no-op: the transport learns of every loss
from ``on_disconnect`` and its supervisor reconnects with exponential backoff
and jitter.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from array import array
from collections.abc import Awaitable, Callable
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTCommands, MQTTv50
from gmqtt.mqtt.package import CommandWithMidPacket, Package

_LOGGER = logging.getLogger(__name__)

_PUBLISH_QOS1_MASK = 0xF6
"""A fixed header byte masked so that only the packet type and QoS remain (DUP and RETAIN dropped) ..."""
_PUBLISH_QOS1 = 0x32
"""... equals this for a PUBLISH at QoS 1."""

PACKETS_PER_TURN = 256
"""Packets one call hands over at most before the reader yields the event loop (~4 ms at steady ingest)."""
TURN_SECONDS = 0.004
"""... or fewer, once the loop's thread has spent this much CPU on them: a fleet's first messages (registering
every node and its entities) cost several times a known node's, and 256 of them held the loop ~25 ms.  CPU
time, not the wall clock: on a loaded machine the wall clock also counts time the process was not running,
and turns cut short by it cost CPU per message (a yield and a buffer copy each)."""
CHECK_EVERY = 32
"""Packets between two looks at the clock (reading it per packet would cost more than the bound saves)."""


class HubMqttClient(gmqtt.Client):
    """A gmqtt Client with a persistent session, acknowledgement after the handler, and no own reconnect loop."""

    def __init__(self, client_id: str, **properties: Any) -> None:
        super().__init__(client_id, clean_session=False, optimistic_acknowledgement=False, **properties)
        # gmqtt's packet handler is a separate object that calls its own method for QoS 1
        # publishes; an instance attribute takes precedence over that method.
        self._package_handler._handle_qos_1_publish_packet = self._handle_qos_1_publish_packet
        self._acks: list[bytes] = []
        self._acks_connection: Any = None
        self._handle_puback = self._package_handler._handle_puback_packet
        self._package_handler._handle_puback_packet = self._handle_puback_packet
        self._confirmations: dict[int, asyncio.Future[None]] = {}

    @property
    def protocol_version(self) -> int:
        """The protocol version in use (gmqtt downgrades 5 to 3.1.1 when the broker refuses 5)."""
        return self._connection_state.protocol_version

    @property
    def refusal(self) -> Exception | None:
        """The broker's refusal of the last connection attempt (an ``MQTTConnectError``), if any."""
        return self._package_handler._error

    on_qos1_message: Any = None
    """``on_qos1_message(mid, topic, payload, retained)``: set by the transport; called inline, no task."""

    @staticmethod
    def backlog() -> asyncio.Future[None] | None:
        """None, or a future while the hub cannot take more input (``hub.durability.backlog``; the transport sets
        it): each connection's reader stops reading from the socket until it is done."""
        return None

    def _handle_qos_1_publish_packet(self, mid: int, packet: bytes, print_topic: str, properties: dict) -> None:
        """gmqtt would wrap every QoS 1 message in a task awaiting ``on_message``; hand it over inline instead.

        At tens of thousands of messages a second the task (and its done-callback) per message
        was most of the hub's CPU.  The transport acknowledges a whole batch of messages with
        :meth:`acknowledge` when their commit completes.  (Most QoS 1 messages do not come
        this way but through :class:`LeanReader`; this is the path of those with properties.)
        """
        self.on_qos1_message(mid, print_topic, packet, properties.get("retain") == 1)

    async def _create_connection(self, host: str, port: int, ssl: Any, clean_session: bool, keepalive: int) -> Any:
        """gmqtt's connection, with the lean reader installed before the CONNECT is even sent."""
        connection = await super()._create_connection(host, port, ssl, clean_session, keepalive)
        protocol = connection._protocol
        reader = LeanReader(self, connection)
        protocol._read_packet = reader
        protocol.read = reader.wrap_read(protocol.read)
        return connection

    def publish_confirmed(self, topic: str, payload: bytes, *, retain: bool = False) -> asyncio.Future[None]:
        """Publish at QoS 1; the future resolves when the broker's PUBACK for it arrives.

        gmqtt's ``publish`` hides the packet id, which is what a PUBACK names; this is its body
        (hand to the connection, keep for resending) with the id kept.  A message the broker
        never acknowledges (the connection dropped) leaves its future pending: callers bound
        the wait.
        """
        mid, package = self._connection.publish(gmqtt.Message(topic, payload, qos=1, retain=retain))
        self._persistent_storage.push_message(mid, package)
        future = asyncio.get_running_loop().create_future()
        stale = self._confirmations.pop(mid, None)
        if stale is not None and not stale.done():
            stale.set_exception(ConnectionError("the broker never acknowledged the message"))
        self._confirmations[mid] = future
        return future

    def _handle_puback_packet(self, cmd: int, packet: bytes) -> None:
        """gmqtt's PUBACK handling, plus resolving the future of a :meth:`publish_confirmed` message."""
        self._handle_puback(cmd, packet)
        future = self._confirmations.pop(int.from_bytes(packet[:2], "big"), None)
        if future is not None and not future.done():
            future.set_result(None)

    def acknowledge(self, mids: list[int]) -> None:
        """Queue PUBACKs for ``mids`` on the current connection (written together at the loop's next turn).

        The packets are what gmqtt's ``CommandWithMidPacket.build_package`` makes (success, no
        properties), built for the whole batch by slice assignment instead of one call chain per message.
        """
        if self._pubacks_connection() is not None and mids:
            self._acks.append(_pubacks(mids, self.protocol_version))

    def _send_command_with_mid(self, cmd: int, mid: int, dup: bool, reason_code: int = 0) -> None:
        """gmqtt's single exit for PUBACK/PUBREC/PUBREL/PUBCOMP: drop orphaned acks, batch PUBACKs."""
        if cmd != MQTTCommands.PUBACK:
            connection = self._connection
            if connection is None or connection.is_closing():
                return  # the acknowledgement belongs to a connection that is gone
            super()._send_command_with_mid(cmd, mid, dup, reason_code=reason_code)
            return
        if self._pubacks_connection() is not None:
            self._acks.append(
                CommandWithMidPacket.build_package(
                    cmd, mid, dup, reason_code=reason_code, proto_ver=self.protocol_version
                )
            )

    def _pubacks_connection(self) -> Any:
        """The connection PUBACKs queued now go out on (None: gone, they are dropped); schedules the flush.

        A batch commit makes thousands of PUBACKs due in the same loop iteration; gmqtt would
        write each with its own send() call.  They are collected and written once, at the end of it.
        """
        connection = self._connection
        if connection is None or connection.is_closing():
            return None  # the acknowledgement belongs to a connection that is gone
        if connection is not self._acks_connection:
            self._acks.clear()
            self._acks_connection = connection
        if not self._acks:
            asyncio.get_running_loop().call_soon(self.flush_acks)
        return connection

    def flush_acks(self) -> None:
        """Write the collected PUBACKs (dropped if their connection is no longer the current one)."""
        if not self._acks:
            return
        data = b"".join(self._acks)
        self._acks.clear()
        connection = self._acks_connection
        if connection is self._connection and not connection.is_closing():
            connection.send_package(data)

    async def disconnect(self, reason_code: int = 0, **properties: Any) -> None:
        """Send what is acknowledged, then DISCONNECT (the session stays, per its expiry)."""
        self.flush_acks()
        await super().disconnect(reason_code, **properties)

    async def reconnect(self, delay: bool = False) -> None:
        """gmqtt calls this when a connection is lost or refused: the transport's supervisor reconnects instead."""

    async def close_transport(self) -> None:
        """Close the current connection without a DISCONNECT (a lost connection, as the broker sees it)."""
        connection = self._connection
        if connection is not None and not connection.is_closing():
            await connection.close()


class LeanReader:
    """A connection's packet reader: QoS 1 PUBLISH packets without properties are handed over directly.

    It replaces ``MQTTProtocol._read_packet(data) -> parsed bytes`` (``-1``: malformed) of one
    connection.  Each complete packet in ``data`` is either a QoS 1 PUBLISH this reader can take
    whole, which goes to the client's ``on_qos1_message`` without any intermediate object, or
    anything else, which goes to gmqtt as gmqtt's own reader would hand it over
    (``connection.put_package``).  As in ``put_package``, packets of a connection the client
    has already replaced are dropped, and every read counts as traffic for the keepalive.

    At most :data:`PACKETS_PER_TURN` packets are handed over per call (fewer after
    :data:`TURN_SECONDS` of CPU); when more complete packets remain, it returns how far it
    got, and :meth:`wrap_read`'s ``read`` yields a loop turn before the read loop calls it
    again on the rest (see the module docstring).
    """

    __slots__ = ("_client", "_connection", "_handler", "_more", "_paused_on", "_state")

    def __init__(self, client: HubMqttClient, connection: Any) -> None:
        self._client = client
        self._connection = connection
        self._handler = client._package_handler
        self._state = client._connection_state
        self._paused_on: asyncio.Future[None] | None = None
        self._more = False
        """True when the last call stopped early (its packet or time bound) with data left."""

    def wrap_read(self, read: Callable[[int], Awaitable[bytes]]) -> Callable[[int], Awaitable[bytes]]:
        """The protocol's ``read(n)`` for gmqtt's read loop (``buf += await self.read(n)``, then this reader on
        ``buf``): after a call that stopped early it yields one loop turn and returns nothing new, so the loop
        hands over the rest of its buffer before it reads from the socket again."""

        async def bounded_read(n: int = -1) -> bytes:
            if self._more:
                self._more = False
                await asyncio.sleep(0)
                return b""
            return await read(n)

        return bounded_read

    def __call__(self, data: bytes) -> int:
        connection = self._connection
        size = len(data)
        parsed = 0
        budget = CHECK_EVERY
        checks = PACKETS_PER_TURN // CHECK_EVERY
        deadline = time.thread_time() + TURN_SECONDS
        current = self._handler.current_connection is connection
        properties = self._state.protocol_version >= MQTTv50
        deliver = self._client.on_qos1_message
        while size - parsed >= 2:
            if not budget:
                checks -= 1
                if not checks or time.thread_time() >= deadline:
                    self._more = True  # the rest on the next turn
                    break
                budget = CHECK_EVERY
            budget -= 1
            index = parsed + 1
            length = shift = 0
            while True:  # the Remaining Length: a variable byte integer of at most 4 bytes
                if index >= size:
                    return parsed
                byte = data[index]
                index += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    return -1
            end = index + length
            if end > size:
                break
            command = data[parsed]
            parsed = end
            if not current:
                continue  # a superseded connection: gmqtt's put_package drops these too
            if command & _PUBLISH_QOS1_MASK == _PUBLISH_QOS1:
                message = _lean_publish(data, index, end, properties)
                if message is not None:
                    try:
                        deliver(message[0], message[1], data[message[2] : end], command & 1 == 1)
                    except Exception:  # as gmqtt's handler: one message's failure must not end the read loop
                        _LOGGER.exception("MQTT message handling failed")
                    continue
            connection.put_package(Package(command, data[index:end]))
        if current:
            connection._last_data_in = time.monotonic()  # keepalive: the broker is alive
            backlog = self._client.backlog()
            if backlog is not None:
                self._pause_until(backlog)
        return parsed

    def _pause_until(self, backlog: asyncio.Future[None]) -> None:
        """Stop reading from the socket until ``backlog`` is done: the broker keeps what we do not read.

        What is already buffered is still handed over (a few chunks at most).  asyncio's stream
        reader may resume reading on its own once its buffer drains, so each chunk read while
        the backlog lasts pauses again.
        """
        transport = self._connection._transport
        if transport.is_closing():
            return
        if transport.is_reading():
            transport.pause_reading()
        if backlog is not self._paused_on:
            self._paused_on = backlog
            backlog.add_done_callback(self._resume)

    def _resume(self, backlog: asyncio.Future[None]) -> None:
        if self._paused_on is backlog:
            self._paused_on = None
        connection = self._connection
        transport = connection._transport
        if not transport.is_closing() and not transport.is_reading():
            connection._last_data_in = time.monotonic()  # we stopped reading, the broker did not go quiet
            transport.resume_reading()


def _lean_publish(data: bytes, start: int, end: int, properties: bool) -> tuple[int, str, int] | None:
    """(packet id, topic, payload offset) of a QoS 1 PUBLISH in ``data[start:end]``, or None for gmqtt to parse.

    None when the topic is empty (a topic alias), is not UTF-8, or MQTT 5 properties are present:
    gmqtt's parser handles those (topic aliases are state it keeps).
    """
    topic_end = start + 2 + ((data[start] << 8) | data[start + 1]) if end - start >= 2 else end
    position = topic_end + 2
    if topic_end == start + 2 or position > end:
        return None
    if properties:
        if position >= end or data[position] != 0:
            return None
        position += 1
    try:
        topic = data[start + 2 : topic_end].decode()
    except UnicodeDecodeError:
        return None
    return (data[topic_end] << 8) | data[topic_end + 1], topic, position


def _pubacks(mids: list[int], version: int) -> bytes:
    """Successful PUBACKs for ``mids``, back to back.

    MQTT 5: type, remaining length 4, packet id, reason code 0, no properties (6 bytes); MQTT 3.1.1:
    type, remaining length 2, packet id (4 bytes).  Each column is filled by one slice assignment.
    """
    size = 6 if version == MQTTv50 else 4
    count = len(mids)
    ids = array("H", mids)
    if sys.byteorder == "little":
        ids.byteswap()  # network order
    raw = ids.tobytes()
    packets = bytearray(size * count)  # reason code and property length stay 0
    packets[0::size] = bytes([MQTTCommands.PUBACK]) * count
    packets[1::size] = bytes([size - 2]) * count
    packets[2::size] = raw[0::2]
    packets[3::size] = raw[1::2]
    return bytes(packets)
