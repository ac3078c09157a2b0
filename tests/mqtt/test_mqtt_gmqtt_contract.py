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
from gmqtt.mqtt.constants import MQTTCommands
from gmqtt.mqtt.handler import MqttPackageHandler
from gmqtt.mqtt.package import CommandWithMidPacket
from mqtt_helpers import MQTT_ONLY, BarrierPlugin, PahoPeer, collect, mqtt_config, unique

from hub.plugins.mqtt.client import HubMqttClient
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
