"""The JSON MQTT contract of ESP32 nodes: topics, limits, reserved keys and the pure checks.

Topics (``{MAC}`` in any spelling :func:`hub.normalize_mac` accepts; the hub
answers a node on the spelling it used)::

    devices/{MAC}/data      node → hub   telemetry, a JSON object
    devices/{MAC}/status    node → hub   online / offline (bare or {"status": …}); the LWT, retained

Telemetry keys:

* numbers (not bools) become sensor entities, see :mod:`hub_esp32_node.entities`;
* strings, bools, and nested objects/arrays become node attributes; ``null`` is ignored;
* reserved: ``timestamp``/``ts``/``time`` (when measured), ``seq``/``message_id``
  (make the message deduplicable), ``firmware_version``/``version``/``fw_version``,
  ``mac_address`` (must agree with the topic), :data:`TOPIC_MAC_ATTRIBUTE`, and ``status``
  (ignored: a node's status is the hub's, from the status topic and presence).

Limits protect the hub from a broken or hostile node; every violation is a
rejection with one of the ``REJECT_*`` reasons below.  A key that does not
match :data:`KEY_PATTERN` is dropped from its message (counted as ``bad_key``)
while the message's other readings are kept: one odd field from a firmware
must not black out a node's whole telemetry.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from hub import normalize_mac

DATA_FILTER = "devices/+/data"
STATUS_FILTER = "devices/+/status"
TOPIC_ROOT = "devices"
DATA_LEVEL = "data"
STATUS_LEVEL = "status"

MAX_PAYLOAD = 64 * 1024
"""Bytes; larger messages are rejected before parsing."""
MAX_DEPTH = 8
"""Nesting levels, counting the top-level object as one."""
MAX_KEYS = 128
"""Top-level keys of one telemetry object."""
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a telemetry key may look like: it becomes an entity key, an attribute name, a column in exports."""

REJECT_BAD_TOPIC = "bad_topic"
REJECT_BAD_MAC = "bad_mac"
REJECT_TOO_LARGE = "too_large"
REJECT_NOT_JSON = "not_json"
REJECT_NOT_OBJECT = "not_object"
REJECT_TOO_DEEP = "too_deep"
REJECT_TOO_MANY_KEYS = "too_many_keys"
REJECT_BAD_KEY = "bad_key"
REJECT_MAC_MISMATCH = "mac_mismatch"
REJECT_BAD_STATUS = "bad_status"

TOPIC_MAC_ATTRIBUTE = "topic_mac"
"""Node attribute holding the MAC exactly as the node spells it in its topics.

Commands go to ``devices/{node.attributes["topic_mac"]}/commands``: a node
subscribed to ``devices/AABBCCDDEEFF/commands`` never sees a message sent to
the canonical ``aa:bb:…`` spelling.  It lives in the attributes (not in this
plugin's memory) so storage keeps it across restarts and a command can reach a
node that has not spoken since the hub restarted.
"""

# Roles of reserved telemetry keys (values of RESERVED_KEYS).
TIMESTAMP = 1
DEDUPE = 2
FIRMWARE = 3
MAC = 4
IGNORED = 5

RESERVED_KEYS: dict[str, int] = {
    "timestamp": TIMESTAMP,
    "ts": TIMESTAMP,
    "time": TIMESTAMP,
    "seq": DEDUPE,
    "message_id": DEDUPE,
    "firmware_version": FIRMWARE,
    "version": FIRMWARE,
    "fw_version": FIRMWARE,
    "mac_address": MAC,
    TOPIC_MAC_ATTRIBUTE: IGNORED,
    # The node's status is the hub's word (the status topic, the Last Will, presence timeouts): a "status" in
    # telemetry would become an attribute that says "online" on a node the hub knows is offline.
    "status": IGNORED,
}

_from_bytes = int.from_bytes

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""Integers outside this range are stored as floats: no database integer column or driver chokes on them."""


class ContractViolation(ValueError):
    """Input that breaks the contract; ``reason`` is one of the ``REJECT_*`` names."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def parse_topic(topic: str, leaf: str) -> tuple[str, str]:
    """``devices/{MAC}/{leaf}`` → (canonical node id, the MAC as spelled in the topic)."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != TOPIC_ROOT or parts[2] != leaf:
        raise ContractViolation(REJECT_BAD_TOPIC, f"expected {TOPIC_ROOT}/{{MAC}}/{leaf}")
    spelling = parts[1]
    try:
        return normalize_mac(spelling), spelling
    except ValueError:
        raise ContractViolation(REJECT_BAD_MAC, f"{spelling[:40]!r} is not a MAC address") from None


def default_name(node_id: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` → ``esp32-ddeeff``: short, stable, and what many ESP32 projects call their host."""
    return "esp32-" + node_id[9:].replace(":", "")


def dedupe_hasher(node_id: str) -> Any:
    """A BLAKE2b-64 state keyed by the node; ``copy()``, ``update(payload)`` per message (see :func:`dedupe_id`).

    Keyed by the node so two nodes sending byte-identical payloads (same ``seq``, same
    readings, no MAC inside) can never be mistaken for one redelivered message.
    """
    return hashlib.blake2b(digest_size=8, key=node_id.encode())


def dedupe_id(hasher: Any, payload: bytes) -> int:
    """Stable signed 64-bit id of one message's bytes.

    A broker redelivery is byte-identical, so it gets the same id and storage keeps one
    copy; a node that rebooted and restarted its ``seq`` at 0 sends a different
    timestamp or readings, hence different bytes, and is not wrongly dropped.
    """
    digest = hasher.copy()
    digest.update(payload)
    return _from_bytes(digest.digest(), "big", signed=True)


def nesting_ok(container: dict[str, Any] | list[Any], levels_left: int) -> bool:
    """True if ``container`` nests no deeper than ``levels_left`` levels (itself included)."""
    if levels_left <= 0:
        return False
    for item in container.values() if isinstance(container, dict) else container:
        kind = type(item)
        if (kind is dict or kind is list) and not nesting_ok(item, levels_left - 1):
            return False
    return True


def parse_status(payload: bytes) -> bool | None:
    """True for online, False for offline, None for an empty payload (a retained status being cleared).

    Accepts the bare words in any case with surrounding whitespace (what ESP32 LWTs
    usually are), a JSON string, or ``{"status": "online"}``.
    """
    text = payload.strip().lower()
    if not text:
        return None
    if text == b"online":
        return True
    if text == b"offline":
        return False
    try:
        value = orjson.loads(payload)
    except ValueError:
        raise ContractViolation(REJECT_BAD_STATUS, f"{payload[:40]!r}") from None
    if type(value) is dict:
        value = value.get("status")
    if type(value) is str:
        word = value.strip().lower()
        if word in ("online", "offline"):
            return word == "online"
    raise ContractViolation(REJECT_BAD_STATUS, f"{payload[:40]!r}")
