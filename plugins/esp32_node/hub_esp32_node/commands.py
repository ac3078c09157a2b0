"""Commands over the JSON contract: the hub publishes on ``devices/{MAC}/commands``, the node answers on ``.../ack``.

What a node receives (QoS 1, not retained)::

    {"message_id": "9f1c…", "action": "REBOOT", "params": {}, "timestamp": 1700000000,
     "priority": 5, "timeout": 297}

``timeout`` is how many seconds the command stays valid; ``message_id`` is unique per
command, and good firmware (like the simulator) executes an id at most once, so a broker
that redelivers a ``REBOOT`` from a persistent session cannot put a node in a reboot loop.

What a node answers on ``devices/{MAC}/ack`` (QoS 1)::

    {"message_id": "9f1c…", "status": "received"}                 optional: carrying it out
    {"message_id": "9f1c…", "status": "ok"}                       done
    {"message_id": "9f1c…", "status": "error", "detail": "relay 3 is stuck"}

The command is sent to the MAC as the node spells it in its own topics (the
``topic_mac`` attribute), since a node subscribes only to its own spelling.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from hub import Command, Node, Rejections

from .contract import (
    MAX_PAYLOAD,
    REJECT_NOT_JSON,
    REJECT_NOT_OBJECT,
    REJECT_TOO_LARGE,
    TOPIC_MAC_ATTRIBUTE,
    TOPIC_ROOT,
    ContractViolation,
    parse_topic,
)

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

ACK_LEVEL = "ack"
ACK_FILTER = f"{TOPIC_ROOT}/+/{ACK_LEVEL}"
COMMANDS_LEVEL = "commands"
MAX_DETAIL = 500
"""Characters of a node's ``detail`` kept; the rest is cut (it is shown to operators, not parsed)."""

REJECT_BAD_ACK = "bad_ack"
REJECT_RETAINED_ACK = "retained_ack"


def commands_topic(node: Node) -> str:
    """Where ``node`` listens for commands."""
    return f"{TOPIC_ROOT}/{node.attributes[TOPIC_MAC_ATTRIBUTE]}/{COMMANDS_LEVEL}"


class Esp32Commands:
    """The hub's command deliverer for JSON-contract nodes, and the handler of their acks."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._clock = hub.clock
        self._rejections = Rejections(hub.metrics, _LOGGER)

    def owns(self, node: Node) -> bool:
        """A node that spoke the JSON contract carries the MAC spelling its topics use."""
        return TOPIC_MAC_ATTRIBUTE in node.attributes

    async def deliver(self, command: Command, node: Node) -> None:
        """Publish the command at QoS 1 and wait for the broker's PUBACK."""
        now = self._clock()
        payload = {
            "message_id": command.id,
            "action": command.action,
            "params": command.params,
            "timestamp": int(now),
            "priority": command.priority,
            "timeout": max(1, int(command.expires - now)),
        }
        await self._hub.messages.publish(commands_topic(node), orjson.dumps(payload), qos=1, confirm=True)

    def handle_ack(self, topic: str, payload: bytes, retained: bool) -> None:
        """``devices/{MAC}/ack`` → ``hub.commands.acknowledge``; malformed answers are counted, never raised."""
        if retained:  # an answer kept by the broker is stale by definition
            self._rejections.reject(REJECT_RETAINED_ACK, topic)
            return
        if len(payload) > MAX_PAYLOAD:
            self._rejections.reject(REJECT_TOO_LARGE, topic, f"{len(payload)} bytes > {MAX_PAYLOAD}")
            return
        try:
            node_id, _spelling = parse_topic(topic, ACK_LEVEL)
            message_id, answer, detail = _parse_ack(payload)
        except ContractViolation as err:
            self._rejections.reject(err.reason, topic, err.detail)
            return
        self._hub.commands.acknowledge(node_id, message_id, answer, detail)


def _parse_ack(payload: bytes) -> tuple[str, str, str | None]:
    try:
        data: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ContractViolation(REJECT_NOT_JSON, f"{payload[:40]!r}") from None
    if type(data) is not dict:
        raise ContractViolation(REJECT_NOT_OBJECT)
    message_id, answer, detail = data.get("message_id"), data.get("status"), data.get("detail")
    if type(message_id) is not str or not message_id or type(answer) is not str:
        raise ContractViolation(REJECT_BAD_ACK, "needs message_id and status strings")
    if detail is not None and type(detail) is not str:
        detail = orjson.dumps(detail).decode()
    return message_id[:64], answer.strip().lower(), detail[:MAX_DETAIL] if detail else None
