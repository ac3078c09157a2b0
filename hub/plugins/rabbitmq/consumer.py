"""A lean AMQP 0-9-1 consumer for the ingest queues: deliveries parsed straight from the socket's bytes.

Why not aiormq's consumer (which aio-pika runs on): a py-spy profile of a worker
taking 100,000 messages put about three quarters of its CPU in aiormq, pamqp and
the asyncio work they drive.  Per delivery aiormq reads three frames (method,
content header, body), each with three ``readexactly`` calls, a ``BytesIO``, a
lock and a pamqp object, hands each through an ``asyncio.Queue`` to the
channel's task, then starts one more task for the consumer callback.  Here one
``data_received`` call walks every complete frame in what the socket gave:
``basic.deliver``'s delivery tag, consumer tag and routing key are read with
``struct``, the content header only for its body size (the hub reads no message
property), and the callback runs inline with the body.

Only that hot path is parsed by hand.  Every other frame (the handshake,
``channel.open``, ``basic.qos``, ``basic.consume``, cancels and closes) is
unmarshalled and marshalled by pamqp, as aiormq does.  The connection does one
job: consume on one channel and acknowledge by delivery tag.  aio-pika keeps
declaring the topology, publishing and the event fan-out on its own connection.
A close from the broker (``connection.close``, ``channel.close``, a consumer
cancelled because its queue went away), a missed heartbeat or a dropped socket
ends the connection and calls ``on_lost``: the transport's supervisor
reconnects, and the broker redelivers whatever was not acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pamqp import commands, frame
from pamqp.exceptions import PAMQPException
from pamqp.header import ProtocolHeader
from pamqp.heartbeat import Heartbeat

_LOGGER = logging.getLogger(__name__)

OnDelivery = Callable[["LeanConsumer", int, str, bytes], None]
"""``callback(consumer, delivery_tag, topic, body)``: runs inline, must not raise (the transport catches)."""

CHANNEL = 1
"""The one channel this connection opens."""
FRAME_END = 0xCE
_HEADER = struct.Struct(">BHI")
_U64 = struct.Struct(">Q")
_DELIVER = b"\x00\x3c\x00\x3c"
"""Class 60 (basic), method 60 (deliver): the first four bytes of a ``basic.deliver`` method frame."""
TOPIC_CACHE_SIZE = 100_000
"""Routing keys remembered as MQTT topics (a fleet publishes on the same keys over and over); cleared when full."""
RPC_TIMEOUT = 10.0
"""Seconds the broker may take to answer one set-up or cancel request."""


def ssl_context(query: str) -> ssl.SSLContext:
    """TLS for ``amqps://`` from the URL's options, as aiormq reads them for aio-pika's connection.

    ``cafile``, ``capath`` (the CAs to trust; default the system's), ``certfile`` and ``keyfile`` (a client
    certificate), ``no_verify_ssl=1`` (no certificate or host name check).
    """
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    context = ssl.create_default_context(cafile=options.get("cafile"), capath=options.get("capath"))
    if options.get("certfile"):
        context.load_cert_chain(options["certfile"], options.get("keyfile"))
    if options.get("no_verify_ssl", "0") != "0":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ConsumerClosed(ConnectionError):
    """The broker or the network ended the consuming connection."""


class LeanConsumer(asyncio.Protocol):
    """One AMQP connection consuming queues on one channel; ``ack``/``nack`` by delivery tag."""

    def __init__(self, on_lost: Callable[[BaseException | None], None]) -> None:
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._rest = b""
        self._callbacks: dict[bytes, OnDelivery] = {}
        self._topics: dict[bytes, str] = {}
        self._waiter: tuple[type, asyncio.Future[Any]] | None = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._heartbeat = 0
        self._received_at = time.monotonic()
        self._beat: asyncio.TimerHandle | None = None
        # the delivery being assembled: its callback, tag, topic, body size and the body parts so far
        self._pending: tuple[OnDelivery, int, str] | None = None
        self._size = 0
        self._parts: list[bytes] = []
        self._got = 0
        self.consumer_tags: list[str] = []

    @property
    def is_closed(self) -> bool:
        """True once the connection ended (then acks are not sent: the broker redelivers those messages)."""
        return self._closed.done()

    # --- set-up ------------------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        url: str,
        name: str,
        prefetch: int,
        queues: dict[str, OnDelivery],
        on_lost: Callable[[BaseException | None], None],
    ) -> LeanConsumer:
        """Log in, open the channel, set the prefetch and consume ``queues`` (name -> callback)."""
        parts = urlsplit(url)
        secure = parts.scheme == "amqps"
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(RPC_TIMEOUT):
            _, consumer = await loop.create_connection(
                lambda: cls(on_lost),
                parts.hostname,
                parts.port or (5671 if secure else 5672),
                ssl=ssl_context(parts.query) if secure else None,
            )
        try:
            await consumer._open(parts, name, prefetch, queues)
        except BaseException:
            consumer._abort()
            raise
        return consumer

    async def _open(self, parts: Any, name: str, prefetch: int, queues: dict[str, OnDelivery]) -> None:
        start = self._expect(commands.Connection.Start)
        self._write(ProtocolHeader().marshal())
        await start
        user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
        properties = {
            "product": "hub",
            "connection_name": name,
            "capabilities": {"consumer_cancel_notify": True, "authentication_failure_close": True},
        }
        tune = self._expect(commands.Connection.Tune)
        self._send(commands.Connection.StartOk(properties, "PLAIN", f"\0{user}\0{password}"), 0)
        tuned = await tune
        self._heartbeat = tuned.heartbeat
        self._send(commands.Connection.TuneOk(tuned.channel_max, tuned.frame_max, tuned.heartbeat), 0)
        await self._call(commands.Connection.Open(unquote(parts.path[1:]) or "/"), commands.Connection.OpenOk, 0)
        if self._heartbeat:
            self._beat = asyncio.get_running_loop().call_later(self._heartbeat / 2, self._keepalive)
        await self._call(commands.Channel.Open(), commands.Channel.OpenOk)
        await self._call(commands.Basic.Qos(prefetch_count=prefetch), commands.Basic.QosOk)
        await self._consume(queues)

    async def _consume(self, queues: dict[str, OnDelivery]) -> None:
        for queue, callback in queues.items():
            # Our own tag, known before the broker's first delivery (which may share a read with consume-ok).
            tag = f"hub-{len(self.consumer_tags)}-{id(self):x}"
            self._callbacks[tag.encode()] = callback
            await self._call(commands.Basic.Consume(queue=queue, consumer_tag=tag), commands.Basic.ConsumeOk)
            self.consumer_tags.append(tag)

    def _expect(self, kind: type) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        self._waiter = (kind, future)
        return future

    async def _call(self, request: Any, reply: type, channel: int = CHANNEL) -> Any:
        waiting = self._expect(reply)
        self._send(request, channel)
        async with asyncio.timeout(RPC_TIMEOUT):
            return await waiting

    # --- acknowledging and stopping --------------------------------------------------------------
    def ack(self, tag: int, *, multiple: bool) -> None:
        """Acknowledge ``tag`` (and with ``multiple`` every earlier one); nothing once closed (the broker redelivers)."""
        self._send(commands.Basic.Ack(tag, multiple))

    def nack(self, tag: int, *, multiple: bool, requeue: bool = True) -> None:
        """Return ``tag`` (and with ``multiple`` every earlier one) to its queue."""
        self._send(commands.Basic.Nack(tag, multiple, requeue))

    async def cancel(self) -> None:
        """Stop the broker sending (``basic.cancel`` per consumer, each confirmed); what was sent still arrives."""
        for tag in self.consumer_tags:
            if self.is_closed:
                return
            await self._call(commands.Basic.Cancel(tag), commands.Basic.CancelOk)

    async def close(self) -> None:
        """Close the connection politely (bounded), then the socket."""
        if not self.is_closed and self._transport is not None:
            try:
                await self._call(commands.Connection.Close(200, "hub stopping", 0, 0), commands.Connection.CloseOk, 0)
            except (TimeoutError, ConnectionError):
                pass
        self._abort()

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._finish(None)

    def _send(self, request: Any, channel: int = CHANNEL) -> None:
        self._write(frame.marshal(request, channel))

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self.is_closed:
            self._transport.write(data)

    def _keepalive(self) -> None:
        """Every half heartbeat: send one; a broker silent for two heartbeats is gone."""
        if self.is_closed:
            return
        if time.monotonic() - self._received_at > 2 * self._heartbeat:
            self._fail(ConsumerClosed(f"no frame from RabbitMQ for {2 * self._heartbeat} s (heartbeat)"))
            return
        self._write(Heartbeat.marshal())
        self._beat = asyncio.get_running_loop().call_later(self._heartbeat / 2, self._keepalive)

    def _fail(self, exc: BaseException) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self.is_closed:
            return
        self._closed.set_result(None)
        if self._beat is not None:
            self._beat.cancel()
        if self._waiter is not None and not self._waiter[1].done():
            self._waiter[1].set_exception(exc or ConsumerClosed("RabbitMQ connection closed"))
        self._waiter = None
        self._on_lost(exc)

    # --- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or ConsumerClosed("RabbitMQ closed the connection"))

    def data_received(self, data: bytes) -> None:
        """Every complete frame in the buffer: deliveries by hand, anything else through pamqp."""
        self._received_at = time.monotonic()
        buffer = self._rest + data if self._rest else data
        end = len(buffer)
        position = 0
        try:
            while end - position >= 8:
                kind, channel, size = _HEADER.unpack_from(buffer, position)
                start = position + 7
                stop = start + size
                if stop >= end:
                    break
                if buffer[stop] != FRAME_END:
                    raise ConsumerClosed(f"malformed AMQP frame (type {kind}, channel {channel})")
                if kind == 3:
                    self._body(buffer[start:stop])
                elif kind == 1 and buffer.startswith(_DELIVER, start):
                    self._deliver(buffer, start + 4)
                elif kind == 2:
                    self._content_header(_U64.unpack_from(buffer, start + 4)[0])
                elif kind != 8:  # a heartbeat needs nothing: any frame counts as a sign of life
                    self._method(channel, buffer[position : stop + 1])
                position = stop + 1
        except (ConsumerClosed, PAMQPException, struct.error, UnicodeDecodeError) as err:
            self._fail(err if isinstance(err, ConsumerClosed) else ConsumerClosed(f"bad frame from RabbitMQ: {err}"))
            return
        finally:
            self._rest = buffer[position:]

    # --- the hot path ------------------------------------------------------------------------------
    def _deliver(self, buffer: bytes, at: int) -> None:
        length = buffer[at]
        callback = self._callbacks.get(buffer[at + 1 : at + 1 + length])
        if callback is None:
            raise ConsumerClosed(f"a delivery for an unknown consumer {buffer[at + 1 : at + 1 + length]!r}")
        at += 1 + length
        tag = _U64.unpack_from(buffer, at)[0]
        at += 9  # the tag, then the ``redelivered`` bit
        at += 1 + buffer[at]  # the exchange
        length = buffer[at]
        key = buffer[at + 1 : at + 1 + length]
        topic = self._topics.get(key)
        if topic is None:
            if len(self._topics) >= TOPIC_CACHE_SIZE:
                self._topics.clear()
            topic = self._topics[key] = key.decode().replace(".", "/")
        self._pending = (callback, tag, topic)

    def _content_header(self, size: int) -> None:
        self._size = size
        self._got = 0
        self._parts.clear()
        if size == 0:
            self._complete(b"")

    def _body(self, part: bytes) -> None:
        self._got += len(part)
        if self._got >= self._size and not self._parts:
            self._complete(part)
            return
        self._parts.append(part)
        if self._got >= self._size:
            body = b"".join(self._parts)
            self._parts.clear()
            self._complete(body)

    def _complete(self, body: bytes) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            raise ConsumerClosed("AMQP content without a basic.deliver")
        callback, tag, topic = pending
        try:
            callback(self, tag, topic, body)
        except Exception:  # the transport catches its own; this keeps a bug from ending the connection
            _LOGGER.exception("RabbitMQ delivery callback failed on %r", topic)

    # --- everything else ---------------------------------------------------------------------------
    def _method(self, channel: int, data: bytes) -> None:
        _, _, method = frame.unmarshal(data)
        waiter = self._waiter
        if waiter is not None and isinstance(method, waiter[0]):
            self._waiter = None
            if not waiter[1].done():
                waiter[1].set_result(method)
            return
        if isinstance(method, commands.Connection.Close):
            self._send(commands.Connection.CloseOk(), 0)
            raise ConsumerClosed(f"RabbitMQ closed the connection: {method.reply_code} {method.reply_text}")
        if isinstance(method, commands.Channel.Close):
            self._send(commands.Channel.CloseOk(), channel)
            raise ConsumerClosed(f"RabbitMQ closed the channel: {method.reply_code} {method.reply_text}")
        if isinstance(method, commands.Basic.Cancel):
            raise ConsumerClosed(f"RabbitMQ cancelled consumer {method.consumer_tag} (its queue was deleted?)")
        if isinstance(method, commands.Connection.Blocked | commands.Connection.Unblocked):
            return  # about publishing, which this connection does not do
        _LOGGER.debug("Unexpected AMQP frame on the consuming connection: %r", method)
