"""gmqtt's Client, adjusted where the hub's delivery guarantee needs it.

How gmqtt 0.8 acknowledges (read from ``gmqtt/mqtt/handler.py``): with
``optimistic_acknowledgement=False`` and a coroutine ``on_message``, gmqtt
wraps each inbound QoS 1 message in a task and adds a done-callback that calls
``f.result()`` and sends the PUBACK with that result as reason code.  So the
PUBACK leaves exactly when the handler returns.  If the handler raises or is
cancelled, ``f.result()`` raises inside the callback: no PUBACK (good), but
asyncio logs "Exception in callback" with a traceback for every such message
(bad: a hub stopping with 10,000 messages in flight would log 10,000
tracebacks).  And the callback writes to whatever connection the client has
*then*: a handler that started on a connection that has since been replaced
would acknowledge the new connection's packet id, i.e. some other message.

So the handler never raises; it returns :data:`WITHHELD` when a message must
not be acknowledged, and :class:`HubMqttClient` drops such acknowledgements,
as well as any acknowledgement for a connection that is closing.  It also
writes the PUBACKs that become due together (a whole batch at its commit) in
one write instead of one send() each.  The
transport compares connection generations so a handler from an old connection
returns WITHHELD.  (A PUBACK carrying an error code would not do: the broker
counts any PUBACK as delivery and never resends.)

gmqtt's own reconnect loop (fixed delay, and after its sleep it reconnects
even if ``disconnect()`` was called meanwhile) is switched off by making
:meth:`HubMqttClient.reconnect` a no-op: the transport learns of every loss
from ``on_disconnect`` and its supervisor reconnects with exponential backoff
and jitter.

The non-optimistic check in gmqtt 0.8 (``protocol_version < MQTTv50`` →
optimistic) runs when the Client is constructed, before ``connect(version=)``
has set the version, so it does not fire: acknowledgement after the handler
works on MQTT 3.1.1 too (the tests check it against Mosquitto on both
versions).  :attr:`HubMqttClient.acks_after_handler` reports what gmqtt will
actually do, so a gmqtt that falls back is noticed at startup.
"""

from __future__ import annotations

import asyncio
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTCommands, PubAckReasonCode
from gmqtt.mqtt.package import CommandWithMidPacket

WITHHELD = PubAckReasonCode.UNSPECIFIED_ERROR
"""What the message handler returns for "do not acknowledge": never sent, the broker redelivers."""

_ACKS = (MQTTCommands.PUBACK, MQTTCommands.PUBREC)


class HubMqttClient(gmqtt.Client):
    """A gmqtt Client with a persistent session, acknowledgement after the handler, and no own reconnect loop."""

    def __init__(self, client_id: str, **properties: Any) -> None:
        super().__init__(client_id, clean_session=False, optimistic_acknowledgement=False, **properties)
        self._acks: list[bytes] = []
        self._acks_connection: Any = None

    @property
    def acks_after_handler(self) -> bool:
        """True when gmqtt sends the PUBACK after ``on_message`` returns (what ack-after-commit needs)."""
        return not getattr(self._package_handler, "_optimistic_acknowledgement", True)

    @property
    def protocol_version(self) -> int:
        """The protocol version in use (gmqtt downgrades 5 to 3.1.1 when the broker refuses 5)."""
        return self._connection_state.protocol_version

    @property
    def refusal(self) -> Exception | None:
        """The broker's refusal of the last connection attempt (an ``MQTTConnectError``), if any."""
        return self._package_handler._error

    def _send_command_with_mid(self, cmd: int, mid: int, dup: bool, reason_code: int = 0) -> None:
        """gmqtt's single exit for PUBACK/PUBREC/PUBREL/PUBCOMP: drop withheld and orphaned acks, batch PUBACKs."""
        if reason_code == WITHHELD and cmd in _ACKS:
            return  # not acknowledged: the broker keeps the message and redelivers it
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
