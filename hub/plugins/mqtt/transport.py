"""The MQTT transport: one gmqtt connection that feeds ``hub.messages`` and acknowledges only what is committed.

What arrives is dispatched and acknowledged after its commit by :class:`~.inbound.Inbound` (the hot path).
This module is the connection's life around it: a supervisor task that connects and, when the connection is lost,
reconnects with exponential backoff and jitter; subscriptions kept in step with
the router's filters (as a non-overlapping cover, see :mod:`.filters`: all of
them on the first connection, only what the broker lacks afterwards, everything
again when the broker lost the session); and a stop that first stops taking
messages, then lets the in-flight ones get their commit and acknowledgement,
then disconnects.  What is not acknowledged by then stays with the broker and
comes back after the restart.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any

from gmqtt import Subscription
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.mqtt.handler import MQTTConnectError

from hub import (
    EVENT_TRANSPORT_CONNECTED,
    EVENT_TRANSPORT_DISCONNECTED,
    HubError,
    HubStateError,
    RateLimitedLogger,
    StartupError,
    TransportData,
)

from .backoff import Backoff
from .client import HubMqttClient
from .config import PROTOCOL_5, BrokerUrl, ssl_context
from .filters import SubscriptionLedger, cover
from .inbound import Inbound

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

_MQTT: TransportData = {"transport": "mqtt"}
"""The data of this transport's connected/disconnected events (listeners treat event data as read-only)."""

PERMANENT_REFUSALS = frozenset({2, 4, 5, 133, 134, 135, 138, 140})
"""CONNACK codes no retry can fix: identifier rejected, bad credentials, not authorised, banned, bad auth method."""

_VERSION_NAMES = {MQTTv50: "MQTT 5", MQTTv311: "MQTT 3.1.1"}

SUBSCRIBE_RETRY = 0.1
"""Seconds before subscribing again when the broker's in-flight window had no packet id free."""


CONFIRM_TIMEOUT = 10.0
"""Seconds a confirmed publish waits for the broker's PUBACK."""


class MqttTransport:
    """The hub's connection to one MQTT broker; attached to ``hub.messages`` as its transport."""

    def __init__(
        self,
        hub: Hub,
        url: BrokerUrl,
        *,
        client_id: str,
        protocol: str,
        settings: dict[str, Any],
        ledger: SubscriptionLedger,
    ) -> None:
        self._hub = hub
        self._ledger = ledger
        self.client_id = client_id
        """The MQTT client id: the key of the broker-side session."""
        self._url = url
        self._settings = settings
        self._version = MQTTv50 if protocol == PROTOCOL_5 else MQTTv311
        self._ssl: ssl.SSLContext | bool = ssl_context(settings["tls"]) if url.tls else False
        self._client = HubMqttClient(
            client_id,
            session_expiry_interval=settings["session_expiry"],
            receive_maximum=settings["receive_maximum"],
        )
        if url.username is not None:
            self._client.set_auth_credentials(url.username, url.password)
        self._inbound = Inbound(hub, self._client, self._not_committed)
        self._client.backlog = hub.durability.backlog  # type: ignore[method-assign]
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._backoff = Backoff(settings["reconnect"]["min_delay"], settings["reconnect"]["max_delay"])
        self._lost = asyncio.Event()
        self._dropped_generation = -1
        self._stopping = False
        self._broker_filters: dict[str, int] = {}
        self._subscribe_pending = False
        self._supervisor: asyncio.Task[None] | None = None
        self._detach = hub.messages.attach(self)
        self._log = RateLimitedLogger(_LOGGER)
        self.connected = False
        metrics = hub.metrics
        self._connected_gauge = metrics.gauge("mqtt_connected", "1 while the hub is connected to its MQTT broker")
        self._connected_gauge.set(0)
        self._connections = metrics.counter("mqtt_connections", "Successful connections to the MQTT broker")

    @property
    def inflight(self) -> int:
        """QoS 1 messages received and waiting for their commit (and then their PUBACK)."""
        return self._inbound.inflight

    # --- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        """Connect once (a refusal no retry can fix raises StartupError), then supervise in the background."""
        if self._url.tls and self._settings["tls"]["insecure"]:
            _LOGGER.warning("mqtt: tls: insecure is set: the broker's certificate is not verified")
        if self._version == MQTTv50 and not self._settings["session_expiry"]:
            _LOGGER.warning(
                "mqtt: session_expiry is 0: the broker forgets the hub's session at every disconnect, and with "
                "it the messages published while the hub is away"
            )
        try:
            await self._connect_once()
        except MQTTConnectError as err:
            if _is_permanent(err):
                raise StartupError(
                    f"The MQTT broker {self._url.display} refused the hub (client id {self.client_id!r}): "
                    f"{err.message}. Check the credentials in mqtt: broker: (or the broker's users)."
                ) from None
            self._log_unreachable(err)
        except ssl.SSLCertVerificationError as err:
            raise StartupError(f"TLS to the MQTT broker {self._url.display} failed: {err}") from None
        except (OSError, TimeoutError) as err:
            self._log_unreachable(err)
        self._supervisor = self._hub.create_task(self._supervise(), name="mqtt-supervisor")

    async def stop(self) -> None:
        """Stop taking messages, let in-flight ones reach their commit and PUBACK, then disconnect."""
        self._inbound.accepting = False
        self._stopping = True
        timeout = self._settings["stop_timeout"]
        if self._inbound.inflight:
            try:
                async with asyncio.timeout(timeout):
                    await self._inbound.wait_idle()
            except TimeoutError:
                _LOGGER.warning(
                    "%d MQTT messages still wait for storage after %.0f s: leaving them unacknowledged, "
                    "the broker redelivers them",
                    self._inbound.inflight,
                    timeout,
                )
        await asyncio.sleep(0)  # the last commit callbacks queue their PUBACKs
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        self._inbound.next_generation()  # a message still waiting for its commit is now never acknowledged
        if self.connected:
            await self._client.disconnect()
        else:
            await self._client.close_transport()
        self._detach()
        self.connected = False
        self._connected_gauge.set(0)

    # --- connecting -------------------------------------------------------------------
    async def _connect_once(self) -> None:
        """One attempt: TCP, TLS, CONNECT, CONNACK; raises why it failed."""
        self._lost.clear()
        attempt = asyncio.ensure_future(
            self._client.connect(
                self._url.host,
                self._url.port,
                ssl=self._ssl,
                keepalive=self._settings["keepalive"],
                version=self._version,
            )
        )
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {attempt, lost}, timeout=self._settings["connect_timeout"], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (attempt, lost):
                if not task.done():
                    task.cancel()
            await asyncio.gather(attempt, lost, return_exceptions=True)
        if attempt in done:
            attempt.result()
            return
        if self._client.refusal is not None:
            raise self._client.refusal
        if self._client.protocol_version != self._version:
            _LOGGER.warning(
                "The MQTT broker %s does not speak MQTT 5: using 3.1.1 (set mqtt: protocol: 3.1.1 to say so)",
                self._url.display,
            )
            self._version = self._client.protocol_version
        if lost in done:
            raise ConnectionError("the broker closed the connection before accepting it")
        raise TimeoutError(f"no answer within {self._settings['connect_timeout']:.0f} s")

    async def _supervise(self) -> None:
        """Reconnect with backoff whenever the connection is down, until the transport stops."""
        failures = 0
        while not self._stopping:
            if self.connected:
                await self._lost.wait()
                failures = 0
                continue
            await self._client.close_transport()
            await asyncio.sleep(self._backoff.next())
            try:
                await self._connect_once()
            except MQTTConnectError as err:
                failures += 1
                level = logging.ERROR if _is_permanent(err) else logging.WARNING
                if failures == 1:
                    _LOGGER.log(
                        level, "The MQTT broker %s refused the hub: %s; retrying", self._url.display, err.message
                    )
            except (OSError, TimeoutError) as err:
                failures += 1
                _LOGGER.debug("Reconnecting to %s failed (%d): %s", self._url.display, failures, err)

    def _log_unreachable(self, err: BaseException) -> None:
        reconnect = self._settings["reconnect"]
        _LOGGER.warning(
            "Cannot connect to the MQTT broker %s (%s); retrying in the background (backoff %g to %g s)",
            self._url.display,
            err or type(err).__name__,
            reconnect["min_delay"],
            reconnect["max_delay"],
        )

    # --- gmqtt callbacks ------------------------------------------------------------
    def _on_connect(self, client: HubMqttClient, session_present: int, result: int, properties: dict) -> None:
        first = self._inbound.generation == 0
        self._inbound.next_generation()  # messages from now on are acknowledged on this connection
        self.connected = True
        self._backoff.reset()
        self._connected_gauge.set(1)
        self._connections.inc()
        if not session_present:
            self._broker_filters = {}
        self._subscribe(first=first, session_present=bool(session_present))
        self._hub.bus.fire(EVENT_TRANSPORT_CONNECTED, _MQTT)
        _LOGGER.info(
            "Connected to the MQTT broker %s (%s, client id %r, %s session)",
            self._url.display,
            _VERSION_NAMES.get(self._version, self._version),
            self.client_id,
            "resumed" if session_present else "new",
        )

    def _on_disconnect(self, client: HubMqttClient, packet: Any, exc: BaseException | None = None) -> None:
        was_connected = self.connected
        self.connected = False
        self._connected_gauge.set(0)
        self._lost.set()
        if not was_connected:
            return
        if self._stopping:
            _LOGGER.info("Disconnected from the MQTT broker %s", self._url.display)
        else:
            _LOGGER.warning("Lost the connection to the MQTT broker %s; reconnecting", self._url.display)
            self._hub.bus.fire(EVENT_TRANSPORT_DISCONNECTED, _MQTT)

    def _on_subscribe(self, client: HubMqttClient, mid: int, granted: tuple[int, ...], properties: dict) -> None:
        for subscription in client.subscriptions:
            if subscription.mid == mid and not subscription.acknowledged:
                self._broker_filters.pop(subscription.topic, None)
                _LOGGER.warning(
                    "The MQTT broker %s refused the subscription to %r (not authorised?)",
                    self._url.display,
                    subscription.topic,
                )

    def _not_committed(self, err: BaseException, generation: int) -> None:
        """The PUBACKs are withheld; while running, reconnect so the broker redelivers what it holds for us."""
        if not self._stopping and generation == self._inbound.generation and self._dropped_generation != generation:
            self._dropped_generation = generation
            self._log.warning(
                "commit", "Storage did not commit (%r): not acknowledging; reconnecting so the broker redelivers", err
            )
            self._hub.create_task(self._client.close_transport(), name="mqtt-redeliver")

    # --- Transport (what hub.messages calls) -------------------------------------------
    def subscribe(self, topic_filter: str, qos: int) -> None:
        """A plugin subscribed while the hub runs: ask the broker soon (or on the next connection).

        Filters added within one turn of the event loop (a burst of discovery
        configs, each adding its topics) go to the broker in one SUBSCRIBE.
        """
        if self.connected and not self._subscribe_pending:
            self._subscribe_pending = True
            asyncio.get_running_loop().call_soon(self._subscribe_added)

    def _subscribe_added(self) -> None:
        self._subscribe_pending = False
        if self.connected:
            self._subscribe(first=False, session_present=True)

    def _subscribe(self, *, first: bool, session_present: bool) -> None:
        """Bring the broker's subscriptions to the cover of the router's filters: subscribe, then drop the stale."""
        target = cover(self._hub.messages.filters())
        todo = {
            topic_filter: qos
            for topic_filter, qos in target.items()
            if first or self._broker_filters.get(topic_filter, -1) < qos
        }
        stale = set(self._broker_filters) - set(target)
        if first and session_present:
            stale |= self._ledger.load() - set(target)
        client = self._client
        try:
            if todo:
                # MQTT 5: retained messages only for subscriptions the session does not have yet, so
                # resubscribing after a restart does not replay every retained status.
                retain_handling = 1 if self._version == MQTTv50 else 0
                client.subscriptions = [sub for sub in client.subscriptions if sub.topic not in todo]
                client.subscribe(
                    [Subscription(f, qos=q, retain_handling_options=retain_handling) for f, q in todo.items()]
                )
            if stale:
                client.unsubscribe(sorted(stale))
        except OverflowError:
            # Every packet id the broker allows in flight (its receive maximum) is taken by our unacknowledged
            # packets: ask again shortly, with whatever has been added meanwhile.
            self._log.warning("subscribe", "MQTT in-flight window full: subscribing again shortly")
            if not self._subscribe_pending:
                self._subscribe_pending = True
                asyncio.get_running_loop().call_later(SUBSCRIBE_RETRY, self._subscribe_added)
            return
        self._broker_filters = dict(target)
        if todo or stale:
            self._ledger.save(set(target))

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool, confirm: bool = False) -> None:
        """Hand one message to the broker connection (QoS 0 or 1); HubStateError while disconnected.

        With ``confirm`` (QoS 1 only) it returns once the broker acknowledged the message (PUBACK),
        and raises TimeoutError when no acknowledgement came within ``CONFIRM_TIMEOUT``.
        """
        if not topic or "+" in topic or "#" in topic:
            raise ValueError(f"cannot publish to {topic!r}: a topic is not empty and has no wildcards")
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        if confirm and qos != 1:
            raise ValueError("only a QoS 1 message is acknowledged by the broker")
        if not self.connected:
            raise HubStateError(f"not connected to the MQTT broker {self._url.display}: cannot publish to {topic!r}")
        try:
            if not confirm:
                self._client.publish(topic, payload, qos=qos, retain=retain)
                return
            acknowledged = self._client.publish_confirmed(topic, payload, retain=retain)
        except OverflowError as err:
            raise HubError(
                f"cannot publish to {topic!r}: the broker's in-flight window for the hub's QoS 1 messages is full"
            ) from err
        async with asyncio.timeout(CONFIRM_TIMEOUT):
            await acknowledged


def _is_permanent(err: MQTTConnectError) -> bool:
    return getattr(err, "_code", None) in PERMANENT_REFUSALS
