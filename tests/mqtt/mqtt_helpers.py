"""Helpers for tests against real brokers: a paho-mqtt peer, a TCP proxy that can cut connections, and a
durability barrier the test controls.  Free ports, waiting and private Mosquittos come from :mod:`hub.testing`."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from hub import Hub, Manifest, hookimpl

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO_CONF = REPO / "deploy" / "mosquitto.conf"
MOSQUITTO_ACL = REPO / "deploy" / "mosquitto.acl"
MQTT_ONLY = ("hub.plugins.mqtt",)
EMBEDDED = ("hub.plugins.broker", "hub.plugins.mqtt")


def unique(prefix: str) -> str:
    """A name no other test (or helper running in parallel on the shared broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def mqtt_config(broker: str, client_id: str, **overrides: Any) -> dict[str, Any]:
    """An ``mqtt:`` section with fast reconnects and a short-lived session (the shared broker keeps sessions)."""
    config = {
        "broker": broker,
        "client_id": client_id,
        "session_expiry": 60,
        "reconnect": {"min_delay": 0.05, "max_delay": 0.2},
        "connect_timeout": 3,
        "stop_timeout": 3,
    }
    config.update(overrides)
    return config


def deployed_config(port: int, directory: Path) -> str:
    """deploy/mosquitto.conf with only the port and the paths changed (files in ``directory``; the ACL copied there)."""
    (directory / "acl").write_text(MOSQUITTO_ACL.read_text())
    text = MOSQUITTO_CONF.read_text()
    for line, replacement in (
        ("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1"),
        ("persistence_location /var/lib/mosquitto/", f"persistence_location {directory}/"),
        ("password_file /etc/mosquitto/passwd", f"password_file {directory}/passwd"),
        ("acl_file /etc/mosquitto/acl", f"acl_file {directory}/acl"),
    ):
        assert f"\n{line}\n" in text
        text = text.replace(f"\n{line}\n", f"\n{replacement}\n")
    return text


def collect(hub: Hub, topic_filter: str) -> list[tuple[str, bytes, bool]]:
    """Subscribe on ``hub.messages`` and return the list the messages land in."""
    received: list[tuple[str, bytes, bool]] = []
    hub.messages.subscribe(topic_filter, lambda topic, payload, retained: received.append((topic, payload, retained)))
    return received


class PahoPeer:
    """A paho-mqtt client (another library than the hub's gmqtt), driven from async tests without blocking the loop.

    The loop may host the embedded broker, so every blocking paho call runs in a thread.
    """

    def __init__(
        self,
        client_id: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        clean_session: bool = True,
    ) -> None:
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id or unique("paho"),
            clean_session=clean_session,
            protocol=paho.MQTTv311,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: list[paho.MQTTMessage] = []
        self.connack: paho.ReasonCode | None = None
        self.granted: list[paho.ReasonCode] = []
        """The SUBACK return codes of the last :meth:`subscribe`."""
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda client, userdata, message: self.messages.append(message)
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.connack = reason_code
        self._connected.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
        self.granted = list(reason_codes)
        self._subscribed.set()

    async def try_login(self, port: int, host: str = "127.0.0.1") -> bool:
        """Connect, wait for the CONNACK and disconnect at once; True when accepted.

        Driven by hand (no loop thread), so a refused login costs no reconnect wait.
        """

        def login() -> None:
            self.client.connect(host, port)
            deadline = time.monotonic() + 5
            while not self._connected.is_set() and time.monotonic() < deadline:
                self.client.loop(timeout=0.05)
            self.client.disconnect()

        await asyncio.to_thread(login)
        if not self._connected.is_set():
            pytest.fail("paho got no CONNACK")
        return self.accepted

    async def connect(self, port: int, host: str = "127.0.0.1") -> PahoPeer:
        """Connect and wait for the CONNACK (``self.connack`` says whether it was accepted)."""
        await asyncio.to_thread(self.client.connect, host, port)
        self.client.loop_start()
        if not await asyncio.to_thread(self._connected.wait, 5):
            pytest.fail("paho got no CONNACK")
        return self

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    async def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        """Publish and, for QoS 1, wait for the broker's PUBACK."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, 5)

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic_filter, qos)
        if not await asyncio.to_thread(self._subscribed.wait, 5):
            pytest.fail("paho got no SUBACK")

    async def close(self) -> None:
        await asyncio.to_thread(self.client.disconnect)
        await asyncio.to_thread(self.client.loop_stop)


async def forget_session(port: int, client_id: str) -> None:
    """Delete a persistent MQTT 3.1.1 session from the shared broker (connect once with a clean session)."""
    peer = await PahoPeer(client_id).connect(port)
    await peer.close()


class TcpProxy:
    """Forwards a loopback port to a broker; :meth:`drop` cuts every connection at once, as a network failure would."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {client_writer, broker_writer}
        await asyncio.gather(
            self._pipe(client_reader, broker_writer), self._pipe(broker_reader, client_writer), return_exceptions=True
        )
        self._writers -= {client_writer, broker_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()

    def drop(self) -> None:
        """Abort every proxied connection (RST both ways, no MQTT DISCONNECT)."""
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class BarrierPlugin:
    """Stands in for storage: its durability barrier is a future the test resolves (commit) or fails."""

    MANIFEST = Manifest(name="barrier", after=("mqtt",))
    """After mqtt, so its hub_stop runs before the transport's."""

    def __init__(self, *, fail_on_stop: bool = False) -> None:
        self.future: asyncio.Future[None] | None = None
        self.backlog: asyncio.Future[None] | None = None
        """While set: storage is behind (``hub.durability.backlog``), transports stop reading until it is done."""
        self.fail_on_stop = fail_on_stop

    @hookimpl
    def hub_setup(self, hub: Hub) -> None:
        hub.durability.set_provider(lambda: self.future, lambda: self.backlog)

    @hookimpl
    def hub_stop(self) -> None:
        """Runs before the mqtt plugin's hub_stop (see MANIFEST): the hub stops without this commit."""
        if self.fail_on_stop and self.future is not None and not self.future.done():
            self.future.set_exception(RuntimeError("the hub stopped before the batch committed"))

    def hold(self) -> None:
        """From now on, messages wait for :meth:`commit`."""
        self.future = asyncio.get_running_loop().create_future()

    def commit(self) -> None:
        future, self.future = self.future, None
        assert future is not None
        future.set_result(None)

    def fail(self) -> None:
        future, self.future = self.future, None
        assert future is not None
        future.set_exception(RuntimeError("commit failed"))
