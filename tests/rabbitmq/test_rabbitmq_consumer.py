"""The lean consumer's frame parsing, without a broker: deliveries however the socket splits the bytes.

The broker's frames are made with pamqp (what aiormq speaks), so the hand-written
parser is checked against an independent encoder: every split point of the stream,
bodies in one frame, in several, and empty; consume-ok sharing a read with the
first delivery; a broker's channel close and consumer cancel ending the connection.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from pamqp import commands, frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from hub.plugins.rabbitmq.consumer import CHANNEL, ConsumerClosed, LeanConsumer, ssl_context


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True

    def sent(self) -> list[Any]:
        return [frame.unmarshal(data)[2] for data in self.written]


def delivery(tag: int, routing_key: str, body: bytes, consumer: str = "c", frame_max: int = 0) -> bytes:
    """basic.deliver + content header + body frame(s), as RabbitMQ sends them."""
    deliver = commands.Basic.Deliver(consumer, tag, tag % 2 == 0, "amq.topic", routing_key)
    header = ContentHeader(body_size=len(body), properties=commands.Basic.Properties(delivery_mode=2))
    data = frame.marshal(deliver, CHANNEL) + frame.marshal(header, CHANNEL)
    step = frame_max or len(body) or 1
    for start in range(0, len(body), step):
        data += frame.marshal(ContentBody(body[start : start + step]), CHANNEL)
    return data


def consumer_for(seen: list[tuple[int, str, bytes]], lost: list[Any]) -> tuple[LeanConsumer, FakeTransport]:
    consumer = LeanConsumer(lost.append)
    consumer._callbacks[b"c"] = lambda _consumer, tag, topic, body: seen.append((tag, topic, body))
    transport = FakeTransport()
    consumer.connection_made(transport)
    return consumer, transport


STREAM = [
    (1, "devices.24:0A:C4:00:00:01.data", b'{"seq": 1}'),
    (2, "devices.24:0A:C4:00:00:02.data", b""),
    (3, "devices.24:0A:C4:00:00:01.data", bytes(range(256)) * 3),
]


def expected() -> list[tuple[int, str, bytes]]:
    return [(tag, key.replace(".", "/"), body) for tag, key, body in STREAM]


async def test_every_split_of_the_stream_gives_the_same_deliveries() -> None:
    data = b"".join(delivery(tag, key, body, frame_max=100) for tag, key, body in STREAM)
    for split in range(1, len(data)):
        seen: list[tuple[int, str, bytes]] = []
        lost: list[Any] = []
        consumer, _ = consumer_for(seen, lost)
        consumer.data_received(data[:split])
        consumer.data_received(data[split:])
        assert seen == expected(), split
        assert not lost


async def test_byte_by_byte_and_all_at_once() -> None:
    data = b"".join(delivery(tag, key, body) for tag, key, body in STREAM)
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        seen: list[tuple[int, str, bytes]] = []
        consumer, _ = consumer_for(seen, [])
        for chunk in chunks:
            consumer.data_received(chunk)
        assert seen == expected()


async def test_acks_and_nacks_are_frames_pamqp_reads_back() -> None:
    consumer, transport = consumer_for([], [])
    consumer.ack(41, multiple=True)
    consumer.nack(42, multiple=False)
    ack, nack = transport.sent()
    assert (type(ack), ack.delivery_tag, ack.multiple) == (commands.Basic.Ack, 41, True)
    assert (type(nack), nack.delivery_tag, nack.multiple, nack.requeue) == (commands.Basic.Nack, 42, False, True)


async def test_consume_ok_and_the_first_delivery_in_one_read() -> None:
    seen: list[tuple[int, str, bytes]] = []
    consumer, transport = consumer_for(seen, [])
    consumer._callbacks.clear()
    queues = {"q": lambda _consumer, tag, topic, body: seen.append((tag, topic, body))}
    consume = asyncio.ensure_future(consumer._consume(queues))
    await asyncio.sleep(0)
    (request,) = transport.sent()
    assert isinstance(request, commands.Basic.Consume) and request.queue == "q"
    ok = frame.marshal(commands.Basic.ConsumeOk(request.consumer_tag), CHANNEL)
    consumer.data_received(ok + delivery(7, "devices.X.data", b"{}", consumer=request.consumer_tag))
    await consume
    assert seen == [(7, "devices/X/data", b"{}")]


@pytest.mark.parametrize(
    ("method", "reply"),
    [
        (commands.Channel.Close(406, "PRECONDITION_FAILED - unknown delivery tag 9", 60, 80), commands.Channel.CloseOk),
        (commands.Connection.Close(320, "CONNECTION_FORCED - broker shutdown", 0, 0), commands.Connection.CloseOk),
        (commands.Basic.Cancel("c"), None),
    ],
)
async def test_a_close_or_cancel_from_the_broker_ends_the_connection(method: Any, reply: type | None) -> None:
    seen: list[tuple[int, str, bytes]] = []
    lost: list[Any] = []
    consumer, transport = consumer_for(seen, lost)
    channel = 0 if isinstance(method, commands.Connection.Close) else CHANNEL
    consumer.data_received(frame.marshal(method, channel) + delivery(1, "devices.X.data", b"{}"))
    assert consumer.is_closed and transport.aborted
    assert len(lost) == 1 and isinstance(lost[0], ConsumerClosed)
    assert seen == []  # nothing after the close is handed on (the broker redelivers it)
    assert [type(sent) for sent in transport.sent()] == ([reply] if reply else [])
    consumer.ack(1, multiple=False)
    assert len(transport.written) == (1 if reply else 0)  # closed: no more frames


async def test_a_malformed_frame_ends_the_connection() -> None:
    lost: list[Any] = []
    consumer, transport = consumer_for([], lost)
    data = bytearray(delivery(1, "devices.X.data", b"{}"))
    data[len(frame.marshal(commands.Basic.Deliver("c", 1, False, "amq.topic", "devices.X.data"), CHANNEL)) - 1] = 0
    consumer.data_received(bytes(data))
    assert consumer.is_closed and transport.aborted and isinstance(lost[0], ConsumerClosed)


async def test_close_sends_a_connection_close_and_waits_for_its_answer() -> None:
    lost: list[Any] = []
    consumer, transport = consumer_for([], lost)
    closing = asyncio.ensure_future(consumer.close())
    await asyncio.sleep(0)
    (request,) = transport.sent()
    assert isinstance(request, commands.Connection.Close) and request.reply_code == 200
    assert not consumer.is_closed
    consumer.data_received(frame.marshal(commands.Connection.CloseOk(), 0))
    await closing
    assert consumer.is_closed and transport.aborted and lost == [None]


def test_amqps_options_shape_the_tls_context() -> None:
    assert ssl_context("").verify_mode == ssl.CERT_REQUIRED
    unchecked = ssl_context("no_verify_ssl=1")
    assert unchecked.verify_mode == ssl.CERT_NONE and not unchecked.check_hostname
    with pytest.raises(FileNotFoundError):
        ssl_context("cafile=/nonexistent/ca.pem")
