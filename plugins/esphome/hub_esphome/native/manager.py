"""Every native API connection of one hub: the configured nodes, the discovered ones, the heartbeat.

* Nodes listed in ``esphome: native_api: nodes:`` with a ``host`` are connected when
  the hub starts (only in a role that takes input: a CLI command connects nothing).
* A node listed by ``name`` only, or any node when ``auto_connect`` is on, is
  connected when ``esphome/discover/<name>`` announces it with an IP and an API
  ``port``; a later announcement with another address moves the connection.  A node
  announcing an encrypted API for which no key is configured is not connected (a
  warning says which key is missing).  The announced IP must be an IP address: a
  name from a device is never resolved.
* Every ``min(keepalive, 5)`` seconds each connected node is asked for its
  device info (:meth:`NativeConnection.probe`): its answer is reported as the
  node being available (presence), no answer drops the connection (offline).
* A node an operator removes while connected is dropped and connected again, so it
  comes back registered (as a node that keeps publishing over MQTT would).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from hub import EVENT_NODE_REMOVED, Event, NodeRemovedData, RateLimitedLogger

from .connection import NativeConnection, Target

if TYPE_CHECKING:
    from hub import Hub, Node

    from ..device_info import DeviceInfo

_LOGGER = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 5.0
"""Seconds between heartbeats at most: under presence's least allowed silence (10 s), so a connected node whose
entities rarely change is never timed out between two answers."""


async def _gather(probes: list[Any]) -> None:
    await asyncio.gather(*probes, return_exceptions=True)


def target_of(node: dict[str, Any], host: str | None = None, mac: str | None = None) -> Target:
    """A config entry (``native_api: nodes:``) as a :class:`Target`, with a discovered ``host``/``mac`` if given."""
    return Target(
        host=host or node["host"],
        port=node["port"],
        name=node["name"],
        mac=mac,
        encryption_key=node["encryption_key"],
        password=node["password"],
    )


class NativeApi:
    """The hub's native API connections (see the module docstring)."""

    def __init__(self, hub: Hub, config: dict[str, Any]) -> None:
        self._hub = hub
        self._keepalive: float = config["keepalive"]
        self._auto_connect: bool = config["auto_connect"]
        self._configured: list[dict[str, Any]] = config["nodes"]
        self._named = {node["name"]: node for node in self._configured if node["name"] is not None}
        self._connections: dict[str, NativeConnection] = {}
        """By what identifies them: ``host:port`` for a configured host, ``name:<name>`` for a discovered node."""
        self._by_node: dict[str, NativeConnection] = {}
        self._running = False
        self._starting: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._probing: set[asyncio.Task[None]] = set()
        self._log = RateLimitedLogger(_LOGGER, interval=300.0)
        hub.bus.listen(EVENT_NODE_REMOVED, self._on_node_removed)

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect the configured hosts and start the heartbeat."""
        self._running = True
        for node in self._configured:
            if node["host"] is not None:
                target = target_of(node)
                self._open(target.address, target)
        if self._configured or self._auto_connect:
            self._hub.create_task(self._heartbeat(), name="esphome-native-heartbeat")

    async def stop(self) -> None:
        """Disconnect everything; nodes keep their status (the hub stops, not they)."""
        self._running = False
        for task in [*self._starting, *self._probing]:  # first: nothing may start or probe after its stop
            task.cancel()
        await asyncio.gather(*self._starting, *self._probing, *self._closing, return_exceptions=True)
        connections = list(self._connections.values())
        self._connections.clear()
        self._by_node.clear()
        await asyncio.gather(*(connection.stop() for connection in connections), return_exceptions=True)

    # --- queries (commands) ------------------------------------------------------------------
    def connection(self, node_id: str) -> NativeConnection | None:
        """The connection that reached ``node_id`` (connected now or not), if any."""
        return self._by_node.get(node_id)

    def owns(self, node: Node) -> bool:
        return node.node_id in self._by_node

    def connections(self) -> list[NativeConnection]:
        return list(self._connections.values())

    # --- esphome/discover/<name> -------------------------------------------------------------
    def on_device_info(self, info: DeviceInfo) -> None:
        """A node announced itself over MQTT: connect it if config says so (see the module docstring)."""
        if not self._running:
            return
        configured = self._named.get(info.name)
        if configured is not None and configured["host"] is not None:
            return  # its address is configured; the announcement does not move it
        if configured is None and not self._auto_connect:
            return
        ip, port = info.attributes.get("ip"), info.attributes.get("api_port")
        if ip is None or port is None:
            return  # no native API on that node (or no address)
        try:
            host = str(ipaddress.ip_address(ip))
        except ValueError:
            self._log.warning(
                f"ip:{info.name}", "esphome/discover/%s: %r is not an IP address; not connecting", info.name, ip
            )
            return
        entry = configured or {"port": port, "name": info.name, "encryption_key": None, "password": None}
        if info.attributes.get("api_encryption") and entry["encryption_key"] is None:
            self._log.warning(
                f"key:{info.name}",
                "ESPHome node %s encrypts its API: add it to esphome: native_api: nodes: with its encryption_key",
                info.name,
            )
            return
        target = target_of({**entry, "port": port}, host=host, mac=info.node_id)
        ident = f"name:{info.name}"
        existing = self._connections.get(ident)
        if existing is not None and existing.target == target:
            return
        if existing is not None:
            _LOGGER.info("ESPHome node %s moved to %s; reconnecting", info.name, target.address)
            self._close(ident)
        self._open(ident, target)

    # --- internals ---------------------------------------------------------------------------
    def _open(self, ident: str, target: Target) -> None:
        connection = NativeConnection(self._hub, target, self._keepalive, on_node=self._on_node)
        self._connections[ident] = connection
        self._spawn(self._starting, self._start(connection), f"esphome-native-{target.address}")

    def _close(self, ident: str) -> None:
        connection = self._connections.pop(ident, None)
        if connection is None:
            return
        node_id = connection.device.node_id
        if node_id is not None and self._by_node.get(node_id) is connection:
            del self._by_node[node_id]
        self._spawn(self._closing, connection.stop(), f"esphome-native-stop-{connection.target.address}")

    def _spawn(self, tasks: set[asyncio.Task[None]], coro: Any, name: str) -> None:
        task = self._hub.create_task(coro, name=name)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _start(self, connection: NativeConnection) -> None:
        try:
            await connection.start()
        except OSError as err:  # the DNS name does not resolve (yet): try again later, quietly
            address = connection.target.address
            self._log.warning(f"resolve:{address}", "Cannot resolve %s (%s); retrying every 60 s", address, err)
            await asyncio.sleep(60.0)
            if self._connections.get(self._ident_of(connection)) is connection:
                await self._start(connection)

    def _ident_of(self, connection: NativeConnection) -> str | None:
        return next((ident for ident, c in self._connections.items() if c is connection), None)

    def _on_node(self, connection: NativeConnection) -> None:
        node_id = connection.device.node_id
        if node_id is None:
            return
        other = self._by_node.get(node_id)
        if other is not None and other is not connection and other.connected:
            self._log.warning(
                f"twice:{node_id}",
                "Node %s answers at %s and at %s: keeping both connections, commands go to the newer",
                node_id,
                other.target.address,
                connection.target.address,
            )
        self._by_node[node_id] = connection

    def _on_node_removed(self, event: Event[NodeRemovedData]) -> None:
        connection = self._by_node.pop(event.data["node_id"], None)
        if connection is not None and connection.connected:
            connection.reconnect()

    async def _heartbeat(self) -> None:
        """Probe every connected node every ``min(keepalive, 5)`` s: its answers keep presence informed."""
        interval = min(self._keepalive, HEARTBEAT_INTERVAL)
        while True:
            await asyncio.sleep(interval)
            probes = [connection.probe() for connection in self._connections.values() if connection.connected]
            if probes:
                self._spawn(self._probing, _gather(probes), "esphome-native-probes")
