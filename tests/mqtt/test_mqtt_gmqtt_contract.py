"""The gmqtt internals the hub's client relies on (hub/plugins/mqtt/client.py) are still there and still work.

PUBACK-after-commit depends on private parts of gmqtt: the packet handler dispatching QoS 1 publishes and
PUBACKs through attributes an instance can override, and the client's single exit for acknowledgements.
pyproject.toml pins gmqtt below its next minor version; these tests are what fails first if an upgrade (or
that pin being lifted) breaks the contract, instead of messages silently being acknowledged before commit.
"""

from __future__ import annotations

import asyncio
import inspect

import gmqtt
import pytest
from gmqtt.mqtt.connection import MQTTConnection
from gmqtt.mqtt.constants import MQTTCommands, MQTTv50, MQTTv311
from gmqtt.mqtt.handler import MqttPackageHandler
from gmqtt.mqtt.package import CommandWithMidPacket
from gmqtt.mqtt.protocol import MQTTProtocol
from mqtt_helpers import MQTT_ONLY, BarrierPlugin, PahoPeer, collect, mqtt_config, unique

from hub.plugins.mqtt.client import HubMqttClient, LeanReader
from hub.testing import wait_until


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_patched_gmqtt_internals_exist_with_the_expected_shapes() -> None:
    assert parameters(MqttPackageHandler._handle_qos_1_publish_packet) == [
        "self",
        "mid",
        "packet",
        "print_topic",
        "properties",
    ]
    assert "self._handle_qos_1_publish_packet(" in inspect.getsource(MqttPackageHandler._handle_publish_packet)
    assert parameters(MqttPackageHandler._handle_puback_packet) == ["self", "cmd", "packet"]
    assert parameters(gmqtt.Client._send_command_with_mid)[:4] == ["self", "cmd", "mid", "dup"]
    assert "reason_code" in parameters(gmqtt.Client._send_command_with_mid)
    assert {"proto_ver", "reason_code"} <= set(parameters(CommandWithMidPacket.build_package))
    # The lean reader (LeanReader) replaces one connection's protocol._read_packet, called by the read loop.
    assert parameters(gmqtt.Client._create_connection) == ["self", "host", "port", "ssl", "clean_session", "keepalive"]
    assert parameters(MQTTProtocol._read_packet) == ["self", "data"]
    assert "self._read_packet(buf)" in inspect.getsource(MQTTProtocol._read_loop)
    # It bounds a loop turn through the protocol's read (LeanReader.wrap_read), which the read loop calls before
    # each parse, keeping the unparsed rest of its buffer for the next one.
    assert "buf += await self.read(" in inspect.getsource(MQTTProtocol._read_loop)
    assert "buf = buf[parsed_size:]" in inspect.getsource(MQTTProtocol._read_loop)
    assert parameters(MQTTProtocol.read) == ["self", "n"]
    assert parameters(MQTTConnection.put_package) == ["self", "pkg"]
    assert "_last_data_in" in inspect.getsource(MQTTConnection.put_package)
    assert "current_connection is not self" in inspect.getsource(MQTTConnection.put_package)


async def test_the_client_takes_over_qos1_publishes_and_pubacks() -> None:
    client = HubMqttClient(unique("contract"))
    handler = client._package_handler
    # gmqtt looks its packet handlers up by name on the handler object, so the client's overrides are used.
    assert handler.__get_handler__(MQTTCommands.PUBACK) == client._handle_puback_packet
    assert handler._handle_qos_1_publish_packet == client._handle_qos_1_publish_packet
    assert client.protocol_version in (4, 5)  # _connection_state.protocol_version
    assert client.refusal is None  # _package_handler._error
    # A QoS 1 PUBLISH goes to on_qos1_message inline: no task, no PUBACK from gmqtt.
    seen: list[tuple] = []
    client.on_qos1_message = lambda *args: seen.append(args)
    topic = b"devices/aa/data"
    no_properties = b"\x00" if client.protocol_version == 5 else b""
    body = len(topic).to_bytes(2, "big") + topic + (7).to_bytes(2, "big") + no_properties + b"payload"
    before = len(asyncio.all_tasks())
    handler._handle_publish_packet(0x32, body)  # PUBLISH, QoS 1
    assert [(mid, print_topic, packet) for mid, print_topic, packet, _properties in seen] == [
        (7, "devices/aa/data", b"payload")
    ]
    assert len(asyncio.all_tasks()) == before


def _packet(first_byte: int, body: bytes) -> bytes:
    """A whole MQTT packet: fixed header (with the Remaining Length as a variable byte integer) and body."""
    length, encoded = len(body), bytearray()
    while True:
        length, digit = divmod(length, 128)
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes([first_byte]) + bytes(encoded) + body


def _publish(
    topic: bytes, payload: bytes, *, qos: int, mid: int = 0, retain: bool = False, props: bytes = b""
) -> bytes:
    header = 0x30 | qos << 1 | int(retain)
    return _packet(
        header, len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"") + props + payload
    )


class _Connection:
    """Stands in for gmqtt's MQTTConnection: the packets the lean reader leaves to gmqtt go to its handler."""

    def __init__(self, handler: MqttPackageHandler) -> None:
        self._handler = handler
        self._last_data_in = 0.0
        self.left_to_gmqtt: list[int] = []

    def put_package(self, package) -> None:
        self.left_to_gmqtt.append(package.cmd & 0xF0)
        self._handler(package)


@pytest.mark.parametrize("version", [MQTTv50, MQTTv311])
async def test_the_lean_reader_delivers_what_gmqtt_would(version: int) -> None:
    """QoS 1 publishes without properties go straight to on_qos1_message, the rest through gmqtt, in order."""
    client = HubMqttClient(unique("lean"))
    client._connection_state.protocol_version = version
    handler = client._package_handler
    connection = _Connection(handler)
    handler._connection = connection  # what current_connection returns
    seen: list[tuple] = []
    client.on_qos1_message = lambda mid, topic, payload, retained: seen.append((1, mid, topic, payload, retained))
    client.on_message = lambda _client, topic, payload, qos, _properties: seen.append((qos, None, topic, payload))
    no_props = b"\x00" if version == MQTTv50 else b""
    # MQTT 5 user property ("k", "v"): gmqtt parses it; 3.1.1 has no properties, so it sends plain bytes.
    user_property = b"\x07\x26\x00\x01k\x00\x01v" if version == MQTTv50 else b""
    big = b"x" * 300  # a two-byte Remaining Length
    stream = b"".join(
        [
            _publish(b"devices/aa/data", b'{"t":1}', qos=1, mid=1, props=no_props),
            _publish(b"devices/aa/status", b"online", qos=1, mid=2, retain=True, props=no_props),
            _publish(b"devices/bb/data", b"q0", qos=0, props=no_props),
            _publish(b"devices/cc/data", big, qos=1, mid=3, props=user_property or no_props),
            _publish(b"devices/\xff/data", b"bad topic", qos=1, mid=4, props=no_props),
            _packet(0xD0, b""),  # PINGRESP
            _publish(b"devices/dd/data", b"last", qos=1, mid=65535, props=no_props),
        ]
    )
    reader = LeanReader(client, connection)
    buffer = b""
    for start in range(0, len(stream), 7):  # as the read loop: partial reads, unparsed rest kept
        buffer += stream[start : start + 7]
        parsed = reader(buffer)
        assert parsed >= 0
        buffer = buffer[parsed:]
    assert buffer == b""
    assert seen == [
        (1, 1, "devices/aa/data", b'{"t":1}', False),
        (1, 2, "devices/aa/status", b"online", True),
        (0, None, "devices/bb/data", b"q0"),
        (1, 3, "devices/cc/data", big, False),
        (1, 4, b"devices/\xff/data", b"bad topic", False),  # gmqtt hands an undecodable topic over as bytes
        (1, 65535, "devices/dd/data", b"last", False),
    ]
    qos1_properties = [MQTTCommands.PUBLISH] if version == MQTTv50 else []
    assert connection.left_to_gmqtt == [
        MQTTCommands.PUBLISH,  # QoS 0
        *qos1_properties,
        MQTTCommands.PUBLISH,  # the topic that is not UTF-8
        MQTTCommands.PINGRESP,
    ]
    assert connection._last_data_in > 0
    assert reader(b"\x32\xff\xff\xff\xff\x01") == -1  # a Remaining Length longer than 4 bytes


async def test_the_lean_reader_drops_what_a_replaced_connection_still_delivers() -> None:
    client = HubMqttClient(unique("lean"))
    handler = client._package_handler
    old, current = _Connection(handler), _Connection(handler)
    handler._connection = current
    seen: list[tuple] = []
    client.on_qos1_message = lambda *args: seen.append(args)
    packet = _publish(b"a/b", b"p", qos=1, mid=9, props=b"\x00" if client.protocol_version == MQTTv50 else b"")
    assert LeanReader(client, old)(packet) == len(packet)
    assert seen == [] and old.left_to_gmqtt == []


@pytest.mark.parametrize("version", [MQTTv50, MQTTv311])
async def test_batched_pubacks_are_the_bytes_gmqtt_builds(version: int) -> None:
    client = HubMqttClient(unique("acks"))
    client._connection_state.protocol_version = version

    class Sent:
        data = b""

        def is_closing(self) -> bool:
            return False

        def send_package(self, data: bytes) -> None:
            self.data += data

    connection = client._connection = Sent()
    mids = [1, 2, 300, 65535]
    client.acknowledge(mids)
    client.flush_acks()
    expected = b"".join(
        CommandWithMidPacket.build_package(MQTTCommands.PUBACK, mid, False, proto_ver=version) for mid in mids
    )
    assert connection.data == expected


@pytest.mark.mosquitto
async def test_no_puback_reaches_the_broker_before_the_commit(hub_factory, hub_mqtt_url) -> None:
    """On the wire: the hub's PUBACK for a message is written only once its barrier (the commit) resolves."""
    proxy = await RecordingProxy(1883).start()
    topic, client_id = f"{unique('t')}/data", unique("hub")
    barrier = BarrierPlugin()
    hub = await hub_factory(
        {"mqtt": mqtt_config(proxy.url, client_id)}, builtins=MQTT_ONLY, plugins=[(barrier, "barrier")], start=False
    )
    received = collect(hub, topic)
    await hub.async_start()
    peer = await PahoPeer().connect(1883)
    try:
        barrier.hold()
        await peer.publish(topic, b"m1", qos=1)
        await wait_until(lambda: received, message="the message at the hub")
        await asyncio.sleep(0)  # let any PUBACK written in this loop turn reach the proxy
        await wait_until(lambda: proxy.hub_packets, message="the hub's CONNECT and SUBSCRIBE")
        assert MQTTCommands.PUBACK not in proxy.hub_packet_types()
        barrier.commit()
        await wait_until(lambda: MQTTCommands.PUBACK in proxy.hub_packet_types(), message="the PUBACK after commit")
    finally:
        await peer.close()
        await hub.async_stop()
        await proxy.close()


class RecordingProxy:
    """A loopback TCP proxy to a broker that keeps the bytes the client (the hub) sent, split into MQTT packets."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hub_packets: list[bytes] = []
        self._buffer = b""
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    def hub_packet_types(self) -> set[int]:
        return {packet[0] & 0xF0 for packet in self.hub_packets}

    async def _serve(self, hub_reader: asyncio.StreamReader, hub_writer: asyncio.StreamWriter) -> None:
        broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [hub_writer, broker_writer]
        await asyncio.gather(
            self._pipe(hub_reader, broker_writer, record=True),
            self._pipe(broker_reader, hub_writer, record=False),
            return_exceptions=True,
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, record: bool) -> None:
        try:
            while data := await reader.read(65536):
                if record:
                    self._split(data)
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()

    def _split(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 2:
            length, multiplier, index = 0, 1, 1
            while True:  # the remaining length: a variable-length integer after the first byte
                if index >= len(self._buffer):
                    return
                byte = self._buffer[index]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                index += 1
                if not byte & 0x80:
                    break
            if len(self._buffer) < index + length:
                return
            self.hub_packets.append(self._buffer[: index + length])
            self._buffer = self._buffer[index + length :]

    async def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
