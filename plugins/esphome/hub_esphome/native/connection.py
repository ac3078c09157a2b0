"""One node's native API connection: aioesphomeapi's ``APIClient`` kept up by its ``ReconnectLogic``.

No mDNS, ever.  aioesphomeapi would use zeroconf in two places: to resolve a host
that is a ``.local`` or a bare one-label name, and, in ``ReconnectLogic``, to listen
for the node's mDNS announcements and reconnect early.  Here the client only ever
gets IP addresses (config refuses ``.local`` names; a DNS name is resolved by the
system's resolver before the client sees it; discovered nodes give their IP), so
its resolver takes the IP fast path, and the reconnect logic runs with
``zeroconf_wake=False``.  No zeroconf instance is created at all.

Reconnecting is aioesphomeapi's: at once after an unexpected drop, then with a
backoff of 1.8^n s up to 60 s; a node that refused the key or password is tried
again only every 60 s.  A node that stops answering (power loss over Wi-Fi: no
TCP reset) is found by the heartbeat's request (:meth:`NativeConnection.probe`),
and in any case by aioesphomeapi's pings (unanswered for 4.5 x ``keepalive``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aioesphomeapi as api

from hub import LimitExceeded, RateLimitedLogger, Rejections

from .device import NativeDevice

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

CLIENT_INFO = "hub"
"""How the hub introduces itself to the node (shown in the node's log)."""
PROBE_TIMEOUT = 10.0
"""Seconds a heartbeat request may take at most (less with a shorter keepalive)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where one node is and how to get in."""

    host: str
    """An IP address, or a DNS name (resolved by the system, never by mDNS)."""
    port: int
    name: str | None = None
    """The node's ``esphome: name``, when known: a node answering with another name is refused."""
    mac: str | None = None
    """The node's MAC (``aa:bb:…``), when known from discovery: a node with another MAC is refused."""
    encryption_key: str | None = None
    password: str | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


async def resolve(host: str, port: int) -> list[str]:
    """The IP addresses of ``host``: itself when it is one, else what the system's resolver says (no mDNS)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class NativeConnection:
    """Keeps one node connected and feeds its :class:`NativeDevice`; see the module docstring."""

    def __init__(
        self,
        hub: Hub,
        target: Target,
        keepalive: float,
        on_node: Callable[[NativeConnection], None] | None = None,
    ) -> None:
        self.target = target
        self.device = NativeDevice(hub.registry, hub.clock, target.address, Rejections(hub.metrics, _LOGGER))
        self._keepalive = keepalive
        self._on_node = on_node
        self._client: api.APIClient | None = None
        self._logic: api.ReconnectLogic | None = None
        self._stopping = False
        self._probing = False
        self.connected = False
        self.connects = 0
        """Successful connections so far (tests and the log)."""
        self.last_setup_seconds: float | None = None
        """Seconds from the finished handshake to every listed entity in the registry, at the last connect."""
        self.first_connect_seconds: float | None = None
        """Seconds from :meth:`start` to every listed entity in the registry, at the first connect."""
        self._started_at: float | None = None
        self._log = RateLimitedLogger(_LOGGER, interval=60.0)

    @property
    def client(self) -> api.APIClient:
        """The client, for commands; HubError-free: callers check :attr:`connected` first."""
        assert self._client is not None, "not started"
        return self._client

    async def start(self) -> None:
        """Resolve the host and start connecting (in the background: this returns at once)."""
        target = self.target
        self._started_at = time.perf_counter()
        addresses = await resolve(target.host, target.port)
        if self._stopping:
            return  # stopped while the name was being resolved
        expected_mac = target.mac.replace(":", "") if target.mac else None
        self._client = api.APIClient(
            addresses[0],
            target.port,
            target.password,
            client_info=CLIENT_INFO,
            keepalive=self._keepalive,
            noise_psk=target.encryption_key,
            expected_name=target.name,
            expected_mac=expected_mac,
            addresses=addresses,
        )
        self._logic = api.ReconnectLogic(
            client=self._client,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_connect_error=self._on_connect_error,
            name=target.name,
            zeroconf_wake=False,
        )
        await self._logic.start()

    async def stop(self) -> None:
        """Stop reconnecting and disconnect; the node's status is left as it is (the hub stops, not the node)."""
        self._stopping = True
        if self._logic is not None:
            await self._logic.stop()
        if self._client is not None:
            await self._client.disconnect()
        self.connected = False

    async def probe(self) -> None:
        """Ask the node for its device info: an answer is proof of life for presence; none drops the connection.

        A node that loses power over Wi-Fi sends no TCP reset, so only silence tells: a request unanswered within
        ``min(keepalive, 10)`` s ends the connection (and the node is offline at once).  One probe at a time.
        """
        if not self.connected or self._probing:
            return
        self._probing = True
        try:
            await asyncio.wait_for(self.client.device_info(), min(self._keepalive, PROBE_TIMEOUT))
        except (api.APIConnectionError, TimeoutError) as err:
            if self.connected:
                _LOGGER.info("%s did not answer the heartbeat (%s): dropping the connection", self.device.node_id, err)
                self.client.force_disconnect()
            return
        finally:
            self._probing = False
        if self.connected:
            self.device.alive()

    def reconnect(self) -> None:
        """Drop the connection; the reconnect logic makes a new one (and registers the node again)."""
        if self._client is not None:
            self._client.force_disconnect()

    # --- ReconnectLogic's callbacks -------------------------------------------------------
    async def _on_connect(self) -> None:
        client = self.client
        started = time.perf_counter()
        try:
            info, entities, _services = await client.device_info_and_list_entities()
        except api.APIConnectionError as err:
            self._log.warning(self.target.address, "%s: listing entities failed: %s", self.target.address, err)
            client.force_disconnect()
            return
        try:
            node = self.device.connected(info, entities)
        except ValueError as err:
            self._log.error(
                self.target.address, "%s: cannot key the node (%s); disconnecting", self.target.address, err
            )
            client.force_disconnect()
            return
        except LimitExceeded:  # counted by the device; the reconnect logic tries again later
            client.force_disconnect()
            return
        client.subscribe_states(self.device.on_state)
        self.connected = True
        self.connects += 1
        now = time.perf_counter()
        self.last_setup_seconds = now - started
        if self.first_connect_seconds is None and self._started_at is not None:
            self.first_connect_seconds = now - self._started_at
        _LOGGER.info(
            "Connected to %s (%s) over the native API: %d entities in %.0f ms",
            node.node_id,
            self.target.address,
            len(self.device.entities),
            self.last_setup_seconds * 1000,
        )
        if self._on_node is not None:
            self._on_node(self)

    async def _on_disconnect(self, expected_disconnect: bool) -> None:
        was_connected, self.connected = self.connected, False
        if self._stopping or not was_connected:
            return
        _LOGGER.info(
            "Lost the native API connection to %s (%s)%s",
            self.device.node_id,
            self.target.address,
            " (the node said goodbye)" if expected_disconnect else "",
        )
        self.device.disconnected()

    async def _on_connect_error(self, err: Exception) -> None:
        """Say plainly what configuration is wrong (aioesphomeapi logs the rest, and retries)."""
        if isinstance(err, _CONFIG_ERRORS):
            self._log.error(
                f"config:{self.target.address}", "%s: %s (check esphome: native_api:)", self.target.address, err
            )


_CONFIG_ERRORS = (
    api.InvalidEncryptionKeyAPIError,
    api.InvalidAuthAPIError,
    api.RequiresEncryptionAPIError,
    api.EncryptionPlaintextAPIError,
    api.BadNameAPIError,
    api.BadMACAddressAPIError,
)
"""Connection errors that only a change of config (or of the node) fixes."""
