"""gmqtt's Client, adjusted where the hub's delivery guarantee and throughput need it.

How gmqtt 0.8 acknowledges (read from ``gmqtt/mqtt/handler.py``): with
``optimistic_acknowledgement=False`` and a coroutine ``on_message``, gmqtt wraps
every inbound QoS 1 message in a task and sends the PUBACK from that task's
done-callback, on whatever connection the client has *then*.  A task and a
callback per message were most of the hub's CPU at tens of thousands of
messages a second, and a callback that outlives its connection would
acknowledge some other message's packet id on the new one.

So :class:`HubMqttClient` takes QoS 1 messages inline
(:meth:`~HubMqttClient._handle_qos_1_publish_packet` calls the transport's
``on_qos1_message``) and the transport acknowledges a whole committed batch at
once with :meth:`~HubMqttClient.acknowledge`, after checking the batch's
messages arrived on the current connection.  A message that must not be
acknowledged is simply never acknowledged: the broker redelivers it.  (A PUBACK
carrying an error code would not do: the broker counts any PUBACK as delivery.)
The PUBACKs that become due together are written in one ``send`` instead of
one each.

gmqtt's own reconnect loop (fixed delay, and after its sleep it reconnects
even if ``disconnect()`` was called meanwhile) is switched off by making
:meth:`HubMqttClient.reconnect` a no-op: the transport learns of every loss
from ``on_disconnect`` and its supervisor reconnects with exponential backoff
and jitter.
"""

from __future__ import annotations

import asyncio
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTCommands
from gmqtt.mqtt.package import CommandWithMidPacket


class HubMqttClient(gmqtt.Client):
    """A gmqtt Client with a persistent session, acknowledgement after the handler, and no own reconnect loop."""

    def __init__(self, client_id: str, **properties: Any) -> None:
        super().__init__(client_id, clean_session=False, optimistic_acknowledgement=False, **properties)
        # gmqtt's packet handler is a separate object that calls its own method for QoS 1
        # publishes; an instance attribute takes precedence over that method.
        self._package_handler._handle_qos_1_publish_packet = self._handle_qos_1_publish_packet
        self._acks: list[bytes] = []
        self._acks_connection: Any = None
        self._handle_puback = self._package_handler._handle_puback_packet
        self._package_handler._handle_puback_packet = self._handle_puback_packet
        self._confirmations: dict[int, asyncio.Future[None]] = {}

    @property
    def protocol_version(self) -> int:
        """The protocol version in use (gmqtt downgrades 5 to 3.1.1 when the broker refuses 5)."""
        return self._connection_state.protocol_version

    @property
    def refusal(self) -> Exception | None:
        """The broker's refusal of the last connection attempt (an ``MQTTConnectError``), if any."""
        return self._package_handler._error

    on_qos1_message: Any = None
    """``on_qos1_message(mid, topic, payload, properties)``: set by the transport; called inline, no task."""

    def _handle_qos_1_publish_packet(self, mid: int, packet: bytes, print_topic: str, properties: dict) -> None:
        """gmqtt would wrap every QoS 1 message in a task awaiting ``on_message``; hand it over inline instead.

        At tens of thousands of messages a second the task (and its done-callback) per message
        was most of the hub's CPU.  The transport acknowledges a whole batch of messages with
        :meth:`acknowledge` when their commit completes.
        """
        self.on_qos1_message(mid, print_topic, packet, properties)

    def publish_confirmed(self, topic: str, payload: bytes, *, retain: bool = False) -> asyncio.Future[None]:
        """Publish at QoS 1; the future resolves when the broker's PUBACK for it arrives.

        gmqtt's ``publish`` hides the packet id, which is what a PUBACK names; this is its body
        (hand to the connection, keep for resending) with the id kept.  A message the broker
        never acknowledges (the connection dropped) leaves its future pending: callers bound
        the wait.
        """
        mid, package = self._connection.publish(gmqtt.Message(topic, payload, qos=1, retain=retain))
        self._persistent_storage.push_message(mid, package)
        future = asyncio.get_running_loop().create_future()
        stale = self._confirmations.pop(mid, None)
        if stale is not None and not stale.done():
            stale.set_exception(ConnectionError("the broker never acknowledged the message"))
        self._confirmations[mid] = future
        return future

    def _handle_puback_packet(self, cmd: int, packet: bytes) -> None:
        """gmqtt's PUBACK handling, plus resolving the future of a :meth:`publish_confirmed` message."""
        self._handle_puback(cmd, packet)
        future = self._confirmations.pop(int.from_bytes(packet[:2], "big"), None)
        if future is not None and not future.done():
            future.set_result(None)

    def acknowledge(self, mids: list[int]) -> None:
        """Queue PUBACKs for ``mids`` on the current connection (written together at the loop's next turn)."""
        for mid in mids:
            self._send_command_with_mid(MQTTCommands.PUBACK, mid, False)

    def _send_command_with_mid(self, cmd: int, mid: int, dup: bool, reason_code: int = 0) -> None:
        """gmqtt's single exit for PUBACK/PUBREC/PUBREL/PUBCOMP: drop orphaned acks, batch PUBACKs."""
        connection = self._connection
        if connection is None or connection.is_closing():
            return  # the acknowledgement belongs to a connection that is gone
        if cmd != MQTTCommands.PUBACK:
            super()._send_command_with_mid(cmd, mid, dup, reason_code=reason_code)
            return
        # A batch commit makes thousands of PUBACKs due in the same loop iteration; gmqtt would
        # write each with its own send() call.  Collect them and write once, at the end of it.
        if connection is not self._acks_connection:
            self._acks.clear()
            self._acks_connection = connection
        if not self._acks:
            asyncio.get_running_loop().call_soon(self.flush_acks)
        self._acks.append(
            CommandWithMidPacket.build_package(cmd, mid, dup, reason_code=reason_code, proto_ver=self.protocol_version)
        )

    def flush_acks(self) -> None:
        """Write the collected PUBACKs (dropped if their connection is no longer the current one)."""
        if not self._acks:
            return
        data = b"".join(self._acks)
        self._acks.clear()
        connection = self._acks_connection
        if connection is self._connection and not connection.is_closing():
            connection.send_package(data)

    async def disconnect(self, reason_code: int = 0, **properties: Any) -> None:
        """Send what is acknowledged, then DISCONNECT (the session stays, per its expiry)."""
        self.flush_acks()
        await super().disconnect(reason_code, **properties)

    async def reconnect(self, delay: bool = False) -> None:
        """gmqtt calls this when a connection is lost or refused: the transport's supervisor reconnects instead."""

    async def close_transport(self) -> None:
        """Close the current connection without a DISCONNECT (a lost connection, as the broker sees it)."""
        connection = self._connection
        if connection is not None and not connection.is_closing():
            await connection.close()
