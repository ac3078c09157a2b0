"""Simulated ESP32 nodes that speak the JSON contract over real MQTT connections (gmqtt).

Each node behaves like typical Arduino/ESP-IDF firmware: its own MQTT 3.1.1
connection (what PubSubClient and ESPHome speak, and what every broker the hub
supports accepts) with a Last Will ``devices/{MAC}/status`` = ``offline``
(retained, QoS 1), a retained ``online`` birth on every (re)connect, then
telemetry every ``interval`` seconds ± jitter with slowly drifting readings,
a ``seq`` counter and an epoch ``timestamp``.

* :meth:`SimulatedNode.stop` is a graceful shutdown: ``offline`` is published,
  then DISCONNECT (so the broker discards the Will).
* :meth:`SimulatedNode.power_loss` closes the socket without DISCONNECT, as a
  board losing power does; the broker then publishes the Will.  After power
  returns the node boots afresh: new connection, ``seq`` and ``uptime`` from 0.
* Commands are executed by :class:`~.commands.CommandExecutor`; after a
  reboot (REBOOT, an update) the node reports at once, with the version it runs.

MACs are Espressif-looking and derived from a seed, so the same ``--seed``
gives the same fleet (and a restarted demo does not register new nodes).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from gmqtt import Client, Message, MQTTConnectError
from gmqtt.mqtt.constants import MQTTv311

from hub import RateLimitedLogger

from .commands import CommandExecutor, OtaBehaviour

_LOGGER = logging.getLogger(__name__)

SIMULATED_FIRMWARE_VERSION = "1.4.2"
"""The version a simulated node boots with, until an update (FIRMWARE_UPDATE) installs another."""
ESPRESSIF_OUIS = ("24:6F:28", "30:AE:A4", "7C:9E:BD", "A4:CF:12", "84:CC:A8", "C8:C9:A3", "EC:94:CB")
WINDOW_WAIT = 0.005
"""Seconds to wait when the broker's in-flight window is full (gmqtt raises OverflowError) before retrying."""
CONNECT_TIMEOUT = 10.0
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class BrokerAddress:
    """Where to connect, parsed from ``mqtt://[user:pass@]host[:port]`` or ``mqtts://…``."""

    host: str
    port: int
    ssl: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """Parse a broker URL; ValueError on anything but mqtt/mqtts with a host."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"expected mqtt://host[:port] or mqtts://host[:port], got {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            ssl=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def node_macs(seed: int, count: int) -> list[str]:
    """``count`` distinct MACs (``AA:BB:CC:DD:EE:FF`` spelling) determined by ``seed``."""
    rng = random.Random(seed)
    macs: list[str] = []
    seen: set[str] = set()
    while len(macs) < count:
        mac = f"{rng.choice(ESPRESSIF_OUIS)}:{rng.randrange(256):02X}:{rng.randrange(256):02X}:{rng.randrange(256):02X}"
        if mac not in seen:
            seen.add(mac)
            macs.append(mac)
    return macs


@dataclass
class FleetStats:
    """Counters shared by a fleet's nodes (read by the CLI's progress lines and by tests)."""

    sent: int = 0
    """Telemetry messages handed to the broker connection."""
    skipped: int = 0
    """Telemetry not sent because the node's connection was down (gmqtt reconnecting)."""
    throttled: int = 0
    """Times a publish waited for the broker's in-flight window."""
    connect_failures: int = 0
    power_losses: int = 0


class SensorModel:
    """Plausible, slowly drifting readings of one board (mean-reverting random walks)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._temp_base = rng.uniform(18.0, 26.0)
        self._hum_base = rng.uniform(35.0, 65.0)
        self._rssi_base = rng.randint(-82, -42)
        self._heap_base = rng.randint(150_000, 240_000)
        self._pressure_base = rng.uniform(1000.0, 1025.0) if rng.random() < 0.5 else None
        self.temperature = self._temp_base
        self.humidity = self._hum_base
        self.pressure = self._pressure_base
        self.free_heap = self._heap_base

    def reboot(self) -> None:
        """A fresh boot has all its heap back."""
        self.free_heap = self._heap_base

    def step(self) -> dict[str, Any]:
        """Advance one reporting interval and return the readings."""
        rng = self._rng
        self.temperature += rng.gauss(0, 0.08) + 0.05 * (self._temp_base - self.temperature)
        humidity = self.humidity + rng.gauss(0, 0.3) + 0.05 * (self._hum_base - self.humidity)
        self.humidity = min(100.0, max(0.0, humidity))
        self.free_heap = max(20_000, self.free_heap + rng.randint(-600, 500))
        readings: dict[str, Any] = {
            "temperature": round(self.temperature, 2),
            "humidity": round(self.humidity, 1),
            "free_heap": self.free_heap,
            "wifi_rssi": min(-30, self._rssi_base + round(rng.gauss(0, 2))),
        }
        if self.pressure is not None and self._pressure_base is not None:
            self.pressure += rng.gauss(0, 0.05) + 0.02 * (self._pressure_base - self.pressure)
            readings["pressure"] = round(self.pressure, 1)
        return readings


class SimulatedNode:
    """One simulated board; see the module docstring."""

    def __init__(
        self,
        mac: str,
        broker: BrokerAddress,
        stats: FleetStats,
        *,
        interval: float = 5.0,
        jitter: float = 0.1,
        qos: int = 1,
        protocol: int = MQTTv311,
        topic_mac: str | None = None,
        seed: int = 0,
        ota_behaviour: OtaBehaviour | None = None,
    ) -> None:
        self.mac = mac
        self.topic_mac = topic_mac or mac
        """How the firmware spells its MAC in topics (Arduino: ``AA:BB:…``; ESPHome style: ``aabbcc…``)."""
        self.name = "esp32-" + mac.replace(":", "")[6:].lower()
        self.data_topic = f"devices/{self.topic_mac}/data"
        self.status_topic = f"devices/{self.topic_mac}/status"
        self.commands_topic = f"devices/{self.topic_mac}/commands"
        self.ack_topic = f"devices/{self.topic_mac}/ack"
        self.firmware_version = SIMULATED_FIRMWARE_VERSION
        self.ota_behaviour = ota_behaviour or OtaBehaviour()
        """How it handles FIRMWARE_UPDATE: which share of updates fail, and how (see :class:`OtaBehaviour`)."""
        self.ota_random = random.Random(f"ota:{seed}:{mac}")
        self.commands = CommandExecutor(self)
        self.reboots = 0
        self._broker = broker
        self._stats = stats
        self._interval = interval
        self._jitter = jitter
        self._qos = qos
        self._protocol = protocol
        self._rng = random.Random(f"{seed}:{mac}")
        self._sensors = SensorModel(self._rng)
        self._client: Client | None = None
        self._booted = 0.0
        self._seq = 0
        self._log = RateLimitedLogger(_LOGGER, interval=60.0)

    @property
    def connected(self) -> bool:
        """True while the node has a live MQTT connection."""
        return self._client is not None and self._client.is_connected

    # --- power -----------------------------------------------------------------------
    async def power_on(self, stop: asyncio.Event | None = None) -> bool:
        """Boot and connect, retrying with backoff until connected (True) or ``stop`` is set (False)."""
        delay = 1.0
        while stop is None or not stop.is_set():
            client = Client(
                f"esp32-{self.mac.replace(':', '').lower()}",
                clean_session=True,
                will_message=Message(self.status_topic, b"offline", qos=1, retain=True),
            )
            client.on_connect = self._on_connect
            client.on_message = self._on_message
            if self._broker.username:
                client.set_auth_credentials(self._broker.username, self._broker.password)
            try:
                await asyncio.wait_for(
                    client.connect(self._broker.host, self._broker.port, ssl=self._broker.ssl, version=self._protocol),
                    CONNECT_TIMEOUT,
                )
            except (OSError, TimeoutError, MQTTConnectError) as err:
                self._stats.connect_failures += 1
                self._log.warning(
                    "connect",
                    "Simulated node %s cannot connect to %s:%s: %s",
                    self.name,
                    self._broker.host,
                    self._broker.port,
                    err,
                )
                await _quietly_disconnect(client)
                if await _sleep_unless(stop, delay):
                    return False
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            self._client = client
            self._booted = time.monotonic()
            self._seq = 0
            self._sensors.reboot()
            return True
        return False

    def _on_connect(self, client: Client, flags: int, rc: int, properties: Any) -> None:
        # Birth on every (re)connect, as firmware does: the broker may have restarted without its retained store.
        client.publish(self.status_topic, b"online", qos=1, retain=True)
        client.subscribe(self.commands_topic, qos=1)

    def _on_message(self, client: Client, topic: str, payload: bytes, qos: int, properties: Any) -> int:
        if topic == self.commands_topic:
            self.commands.on_message(topic, payload)
        return 0

    async def reboot(self, *, firmware_version: str | None = None, downtime: float = 0.5) -> None:
        """Restart as firmware does after REBOOT or an update: ``offline``, DISCONNECT, boot, connect, and report
        at once (with the version it now runs)."""
        self.reboots += 1
        await self.stop()
        if firmware_version is not None:
            self.firmware_version = firmware_version
        await asyncio.sleep(downtime)
        if await self.power_on():
            await self.publish_telemetry()

    def power_loss(self) -> None:
        """Cut the connection without DISCONNECT, so the broker publishes the Will (``offline``)."""
        client, self._client = self._client, None
        if client is None:
            return
        self._stats.power_losses += 1
        # gmqtt has no public call that drops a connection without sending DISCONNECT (that is
        # the whole point here), so reach for its transport; clearing _is_active keeps gmqtt
        # from reconnecting on its own, as a board without power would not.
        client._is_active = False
        connection = client._connection
        if connection is not None:
            connection._transport.abort()

    async def stop(self) -> None:
        """Graceful shutdown: publish the retained ``offline`` and DISCONNECT (the Will is discarded)."""
        client, self._client = self._client, None
        if client is None:
            return
        if client.is_connected:
            await self._publish(client, self.status_topic, b"offline", 1, retain=True)
        await _quietly_disconnect(client)

    # --- telemetry ---------------------------------------------------------------------
    def telemetry(self) -> bytes:
        """The next telemetry payload (advances ``seq`` and the readings)."""
        self._seq += 1
        message = {
            "timestamp": int(time.time()),
            "seq": self._seq,
            **self._sensors.step(),
            "uptime": int(time.monotonic() - self._booted),
            "firmware_version": self.firmware_version,
            "mac_address": self.mac,
        }
        return orjson.dumps(message)

    async def publish_telemetry(self) -> bool:
        """Send one telemetry message; False (counted as skipped) while the connection is down."""
        client = self._client
        if client is None or not client.is_connected:
            self._stats.skipped += 1
            return False
        if await self._publish(client, self.data_topic, self.telemetry(), self._qos):
            self._stats.sent += 1
            return True
        self._stats.skipped += 1
        return False

    async def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        """Publish on the current connection; False while there is none."""
        client = self._client
        return client is not None and await self._publish(client, topic, payload, qos)

    async def _publish(self, client: Client, topic: str, payload: bytes, qos: int, retain: bool = False) -> bool:
        # The flow-control window: past the broker's receive maximum gmqtt raises OverflowError
        # instead of queueing, so wait for PUBACKs to free packet ids and try again.
        while client.is_connected:
            try:
                client.publish(topic, payload, qos=qos, retain=retain)
                return True
            except OverflowError:
                self._stats.throttled += 1
                await asyncio.sleep(WINDOW_WAIT)
        return False

    def next_delay(self) -> float:
        """Seconds until the next report: the interval ± jitter, so a fleet does not publish in lockstep."""
        return max(0.0, self._interval * (1.0 + self._rng.uniform(-self._jitter, self._jitter)))

    async def run(
        self, stop: asyncio.Event, *, outage_chance: float = 0.0, outage_seconds: tuple[float, float] = (15.0, 45.0)
    ) -> None:
        """Report until ``stop`` is set, then shut down gracefully.

        With ``outage_chance`` > 0, each reporting interval may instead be a power loss
        lasting ``outage_seconds`` (uniformly drawn), after which the node boots again.
        """
        try:
            if not await self.power_on(stop):
                return
            if await _sleep_unless(stop, self._rng.uniform(0, self._interval)):
                return
            while not stop.is_set():
                if outage_chance and self._rng.random() < outage_chance:
                    downtime = self._rng.uniform(*outage_seconds)
                    self.power_loss()
                    _LOGGER.info("Simulated power loss on %s (%s); power back in %.0f s", self.name, self.mac, downtime)
                    if await _sleep_unless(stop, downtime) or not await self.power_on(stop):
                        return
                    _LOGGER.info("Simulated node %s powered on again", self.name)
                else:
                    await self.publish_telemetry()
                if await _sleep_unless(stop, self.next_delay()):
                    return
        finally:
            await self.commands.close()
            await self.stop()


class Fleet:
    """N simulated nodes against one broker, run together until :meth:`stop` or a duration elapses."""

    def __init__(
        self,
        broker_url: str,
        count: int,
        *,
        interval: float = 5.0,
        seed: int = 0,
        qos: int = 1,
        protocol: int = MQTTv311,
        outage_chance: float = 0.0,
        outage_seconds: tuple[float, float] = (15.0, 45.0),
        ota_behaviour: OtaBehaviour | None = None,
    ) -> None:
        broker = BrokerAddress.from_url(broker_url)
        self.stats = FleetStats()
        self.nodes: Sequence[SimulatedNode] = [
            SimulatedNode(
                mac,
                broker,
                self.stats,
                interval=interval,
                qos=qos,
                protocol=protocol,
                seed=seed,
                ota_behaviour=ota_behaviour,
                # Every fourth node spells its MAC the ESPHome way, as real mixed fleets do.
                topic_mac=mac.replace(":", "").lower() if index % 4 == 3 else mac,
            )
            for index, mac in enumerate(node_macs(seed, count))
        ]
        self._outage_chance = outage_chance
        self._outage_seconds = outage_seconds
        self._stop = asyncio.Event()

    def connected(self) -> int:
        """How many nodes have a live connection right now."""
        return sum(node.connected for node in self.nodes)

    def stop(self) -> None:
        """Ask every node to shut down gracefully; :meth:`run` returns once they have."""
        self._stop.set()

    async def run(self, duration: float | None = None) -> None:
        """Run every node until :meth:`stop` (or ``duration`` seconds); one task per node, not per message."""
        async with asyncio.TaskGroup() as group:
            for node in self.nodes:
                group.create_task(
                    node.run(self._stop, outage_chance=self._outage_chance, outage_seconds=self._outage_seconds),
                    name=f"simulated-node:{node.name}",
                )
            if duration is not None:
                await _sleep_unless(self._stop, duration)
                self.stop()


async def _sleep_unless(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds``; True if ``stop`` was set meanwhile (the caller should wind down)."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _quietly_disconnect(client: Client) -> None:
    """DISCONNECT and stop gmqtt's own reconnecting; a no-op for a client whose TCP connect failed."""
    try:
        await client.disconnect()
    except (OSError, RuntimeError) as err:
        _LOGGER.debug("Ignoring error while disconnecting a simulated node: %s", err)
