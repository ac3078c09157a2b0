"""What the plugin accepts from the broker: topics, limits, rejection reasons, and the pure checks on them.

Everything here is free of the hub so it can be unit-tested with plain values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from hub import normalize_mac

ESPHOME_DISCOVER_FILTER: Final = "esphome/discover/+"
"""ESPHome publishes its device info (IP, version, board, MAC) here, retained (``discover_ip``, on by default)."""

MAX_CONFIG_BYTES: Final = 64 * 1024
"""A discovery config larger than this is rejected before parsing (a device config with 100 components fits)."""
MAX_STATE_BYTES: Final = 64 * 1024
"""A state or availability payload larger than this is rejected before parsing."""
MAX_COMPONENTS: Final = 256
"""Components one device-discovery config may carry."""
MAX_TOPIC_LENGTH: Final = 256
MAX_TEXT: Final = 255
"""Longest text state kept (ESPHome's text sensors are limited to 255 characters too)."""
MAX_ID_LENGTH: Final = 64
"""Longest node id made from a device identifier that is not a MAC."""

# Rejection reasons (hub_messages_rejected_total{reason=…}); the first four are shared with esp32_node.
REJECT_TOO_LARGE: Final = "too_large"
REJECT_NOT_JSON: Final = "not_json"
REJECT_NOT_OBJECT: Final = "not_object"
REJECT_BAD_TOPIC: Final = "bad_topic"
REJECT_BAD_CONFIG: Final = "bad_discovery_config"
REJECT_NO_DEVICE: Final = "no_device"
REJECT_COLLISION: Final = "discovery_collision"
REJECT_BAD_STATE: Final = "bad_state"
REJECT_BAD_DEVICE_INFO: Final = "bad_device_info"

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_COMPONENT = re.compile(r"[a-z_]+")
_NODE_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")

DEVICE_COMPONENT: Final = "device"
"""``<prefix>/device/<id>/config``: one config carrying many components (``cmps``)."""


class Invalid(ValueError):
    """Input the plugin cannot use: ``reason`` is the rejection reason, ``detail`` says what exactly."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DiscoveryTopic:
    """``<prefix>/<component>/[<node_id>/]<object_id>/config`` taken apart."""

    topic: str
    component: str
    node_id: str | None
    object_id: str


def discovery_filters(prefix: str) -> tuple[str, str]:
    """The two filters that carry every discovery config under ``prefix`` (device configs included)."""
    return f"{prefix}/+/+/config", f"{prefix}/+/+/+/config"


def parse_discovery_topic(topic: str, prefix_levels: int) -> DiscoveryTopic:
    """Split a discovery topic (the prefix has ``prefix_levels`` levels); :class:`Invalid` if it is not one."""
    levels = topic.split("/")[prefix_levels:]
    if len(levels) == 3:
        component, object_id, _ = levels
        node_id = None
    elif len(levels) == 4:
        component, node_id, object_id, _ = levels
    else:
        raise Invalid(REJECT_BAD_TOPIC, "not <prefix>/<component>/[<node_id>/]<object_id>/config")
    if _COMPONENT.fullmatch(component) is None:
        raise Invalid(REJECT_BAD_TOPIC, f"component {component[:40]!r}")
    for level in (node_id, object_id):
        if level is not None and _SEGMENT.fullmatch(level) is None:
            raise Invalid(REJECT_BAD_TOPIC, f"id {level[:40]!r} is not [A-Za-z0-9_-]+")
    if component == DEVICE_COMPONENT and node_id is not None:
        raise Invalid(REJECT_BAD_TOPIC, "a device config is <prefix>/device/<id>/config")
    return DiscoveryTopic(topic, component, node_id, object_id)


def check_id(value: str, what: str) -> str:
    """Ids inside configs (a device config's component ids) follow the discovery topic's id rules."""
    if _SEGMENT.fullmatch(value) is None:
        raise Invalid(REJECT_BAD_CONFIG, f"{what} {value[:40]!r} is not [A-Za-z0-9_-]+")
    return value


def check_publish_topic(topic: object, what: str) -> str:
    """A topic from a config must be one the device can publish on: non-empty, no wildcards, bounded."""
    if (
        not isinstance(topic, str)
        or not topic
        or len(topic) > MAX_TOPIC_LENGTH
        or "+" in topic
        or "#" in topic
        or "\x00" in topic
    ):
        raise Invalid(REJECT_BAD_CONFIG, f"{what} {str(topic)[:60]!r} is not a topic")
    return topic


def node_id_from_identifier(identifier: str) -> str:
    """The hub's node id for a device identifier: the canonical MAC if it is one, else the identifier made safe."""
    try:
        return normalize_mac(identifier)
    except ValueError:
        pass
    safe = _NODE_ID_UNSAFE.sub("_", identifier.strip())[:MAX_ID_LENGTH]
    if not safe.strip("_"):
        raise Invalid(REJECT_NO_DEVICE, f"identifier {identifier[:40]!r} is unusable")
    return safe
