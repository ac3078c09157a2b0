"""The embedded broker's front door: a CONNECT is authenticated before amqtt sees the connection at all.

amqtt acts on a CONNECT before it asks its authentication plugins: it deletes
the session of that client id (``clean_session``) or takes it over (disconnects
the client that holds it).  So with amqtt listening itself, anyone who can reach
the port and knows a client id (the hub's is ``hub-<name>``) could, with a wrong
password, wipe the hub's subscriptions or keep disconnecting it.  Here the hub
listens instead: it reads the CONNECT (at most :data:`MAX_CONNECT_BYTES`, within
:data:`CONNECT_TIMEOUT` seconds), asks the :class:`~.logins.LoginGate`, answers a
refusal itself (CONNACK "not authorised", then close) and hands only accepted
connections to amqtt, through its ``external`` listener, replaying the CONNECT.
amqtt's own authentication call then finds the connection pre-approved.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from amqtt.adapters import BufferReader, ReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connect import ConnectPacket

_LOGGER = logging.getLogger(__name__)

LISTENER = "default"
MAX_CONNECT_BYTES = 64 * 1024
"""A CONNECT is a few hundred bytes; a longer one is refused before it is read."""
CONNECT_TIMEOUT = 10.0
"""Seconds a client has to send its CONNECT after opening the connection."""

CONNACK_BAD_PROTOCOL = bytes((0x20, 0x02, 0x00, 0x01))
CONNACK_NOT_AUTHORISED = bytes((0x20, 0x02, 0x00, 0x05))


class _Replay(ReaderAdapter):
    """The CONNECT bytes already read, then the rest of the stream: amqtt reads the connection from its start."""

    def __init__(self, first: bytes, reader: asyncio.StreamReader) -> None:
        self._first = first
        self._reader = reader

    async def read(self, n: int = -1) -> bytes:
        if self._first:
            if n < 0 or n >= len(self._first):
                data, self._first = self._first, b""
                return data + (await self._reader.readexactly(n - len(data)) if n > len(data) else b"")
            data, self._first = self._first[:n], self._first[n:]
            return data
        if n < 0:
            return await self._reader.read()
        return await self._reader.readexactly(n)

    def feed_eof(self) -> None:
        self._reader.feed_eof()


async def _read_connect(reader: asyncio.StreamReader) -> bytes | None:
    """The raw first packet if it is a CONNECT of acceptable size, else None."""
    first = await reader.readexactly(1)
    if first[0] != 0x10:
        return None
    length, multiplier, header = 0, 1, bytearray(first)
    for _ in range(4):
        byte = (await reader.readexactly(1))[0]
        header.append(byte)
        length += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            break
        multiplier *= 128
    else:
        return None
    if length > MAX_CONNECT_BYTES:
        return None
    return bytes(header) + await reader.readexactly(length)


class BrokerFront:
    """Listens on the broker's address and admits connections to ``broker`` by the gate's word."""

    def __init__(self, broker: Broker, gate: Any) -> None:
        self._broker = broker
        self._gate = gate
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int) -> None:
        """Listen (OSError when the address is taken)."""
        self._server = await asyncio.start_server(self._serve, host, port)

    async def close_listener(self) -> None:
        """Stop accepting connections (those handed to amqtt end with its shutdown)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def cancel_connections(self) -> None:
        """After amqtt's shutdown: end whatever connection is still open."""
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._admit(reader, writer)
        finally:
            self._connections.discard(task)
            writer.transport.abort()

    async def _admit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                raw = await _read_connect(reader)
            packet = await ConnectPacket.from_stream(BufferReader(raw)) if raw is not None else None
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, AMQTTError, MQTTError, NoDataError):
            return
        except Exception:  # noqa: BLE001 - a CONNECT amqtt cannot decode is a bad client, never a crashed listener
            _LOGGER.debug("Undecodable CONNECT from %s", peer[0], exc_info=True)
            return
        if packet is None or raw is None:
            return
        if packet.proto_level != 4:  # amqtt speaks MQTT 3.1.1 only
            writer.write(CONNACK_BAD_PROTOCOL)
            await writer.drain()
            return
        will_topic = packet.will_topic if packet.will_flag else None
        if not await self._gate.authenticate(packet.username, packet.password, peer[0], will_topic):
            writer.write(CONNACK_NOT_AUTHORISED)
            await writer.drain()
            return
        await self._broker.external_connected(_Replay(raw, reader), StreamWriterAdapter(writer), LISTENER)
