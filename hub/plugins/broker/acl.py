"""What a device may publish and read, for both brokers: one definition, two renderings.

A device logs in as its MAC (12 lower-case hex digits, :mod:`.credentials`) and may

* publish ``devices/{MAC}/data``, ``…/status`` (its birth and Last Will) and ``…/ack`` (answers to commands), and
  read ``devices/{MAC}/commands``: the JSON contract, for its own MAC only, spelled as its username;
* if bound to an ESPHome node name ``NAME`` (which ESPHome uses as the node's topic prefix, the ``<node_id>`` of
  its discovery topics and in ``esphome/discover/NAME``): publish and read ``NAME/#`` (states, the
  ``NAME/status`` birth and Will, logs; commands to its entities), publish its discovery configs
  ``<prefix>/+/NAME/+/config`` and its device info ``esphome/discover/NAME``, and read ``<prefix>/status``
  (Home Assistant's birth, on which ESPHome republishes discovery) and ``esphome/discover`` (the request for
  device info).  ``<prefix>`` is the discovery prefix, ``homeassistant`` by default.

Mosquitto gets the JSON-contract part as ``%u`` patterns in the shipped ``deploy/mosquitto.acl`` (the lines of
:data:`DEVICE_PATTERNS`, which a test compares), so a JSON-contract device needs no ACL edit at all; the ESPHome
part is one ``user`` block per bound device, which ``hub device credentials`` writes between markers in the ACL
file (:func:`mosquitto_block`).  The embedded broker enforces :func:`device_rules`, built from the same lists.

Accounts that are not devices (the hub's own, ``broker: users:``) are not limited; the Mosquitto ACL gives the
hub's account ``readwrite #``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .credentials import ESPHOME_NAME, DeviceCredential

DEFAULT_DISCOVERY_PREFIX = "homeassistant"

DEVICE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("write", "devices/%u/data"),
    ("write", "devices/%u/status"),
    ("write", "devices/%u/ack"),
    ("read", "devices/%u/commands"),
)
"""The JSON contract, as Mosquitto ``pattern`` lines (access, topic); ``%u`` is the username."""

ESPHOME_RULES: tuple[tuple[str, str], ...] = (
    ("readwrite", "{name}/#"),
    ("write", "{prefix}/+/{name}/+/config"),
    ("write", "esphome/discover/{name}"),
    ("read", "{prefix}/status"),
    ("read", "esphome/discover"),
)
"""What an ESPHome node named ``{name}`` needs, with discovery prefix ``{prefix}``."""

BLOCK_BEGIN = "# >>> hub device credentials"
BLOCK_END = "# <<< hub device credentials"
BLOCK_NOTE = "# Written by `hub device credentials` from the hub's store; edits between these markers are replaced."

RESERVED_FIRST_LEVELS = frozenset({"devices", "esphome"})
"""Topic roots an ESPHome name may not take (it would grant ``NAME/#`` over every device); the discovery prefix
and the names of loaded plugins (their topic prefixes) are refused too, see :func:`check_esphome_name`."""


def discovery_prefix(config: Mapping[str, Any]) -> str:
    """The discovery prefix ESPHome nodes publish under: the validated config's ``esphome: discovery_prefix`` if set."""
    return str(config.get("esphome", {}).get("discovery_prefix") or DEFAULT_DISCOVERY_PREFIX)


def _levels(topic_filter: str) -> tuple[str, ...]:
    return tuple(topic_filter.split("/"))


def _matches(filter_levels: tuple[str, ...], topic: tuple[str, ...]) -> bool:
    """MQTT matching of a topic name against a filter (``+`` one level, ``#`` the rest, including none)."""
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic) or (level != "+" and level != topic[index]):
            return False
    return len(topic) == len(filter_levels)


def _covers(allowed: tuple[str, ...], requested: tuple[str, ...]) -> bool:
    """True when every topic that matches filter ``requested`` also matches filter ``allowed``."""
    for index, level in enumerate(allowed):
        if level == "#":
            return True
        if index >= len(requested):
            return False
        wanted = requested[index]
        if wanted == "#" or (level != "+" and (wanted == "+" or wanted != level)):
            return False
    return len(requested) == len(allowed)


@dataclass(frozen=True, slots=True)
class Rules:
    """A device's rights: the filters it may publish to and read from."""

    publish: tuple[tuple[str, ...], ...]
    read: tuple[tuple[str, ...], ...]

    def may_publish(self, topic: str) -> bool:
        """A PUBLISH (or Will) to this topic name."""
        levels = _levels(topic)
        return any(_matches(allowed, levels) for allowed in self.publish)

    def may_receive(self, topic: str) -> bool:
        """Delivery of a message on this topic name."""
        levels = _levels(topic)
        return any(_matches(allowed, levels) for allowed in self.read)

    def may_subscribe(self, topic_filter: str) -> bool:
        """A SUBSCRIBE to this filter: only when everything it could match is readable (so ``#`` is refused)."""
        levels = _levels(topic_filter)
        return any(_covers(allowed, levels) for allowed in self.read)


def _esphome_rules(name: str, prefix: str) -> list[tuple[str, str]]:
    return [(access, topic.format(name=name, prefix=prefix)) for access, topic in ESPHOME_RULES]


def device_rules(device: DeviceCredential, discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> Rules:
    """The rights of ``device`` on the embedded broker: exactly what the Mosquitto ACL grants it."""
    lines = [(access, topic.replace("%u", device.username)) for access, topic in DEVICE_PATTERNS]
    if device.esphome_name:
        lines += _esphome_rules(device.esphome_name, discovery_prefix)
    publish = tuple(_levels(topic) for access, topic in lines if access in ("write", "readwrite"))
    read = tuple(_levels(topic) for access, topic in lines if access in ("read", "readwrite"))
    return Rules(publish=publish, read=read)


def check_esphome_name(name: str, discovery_prefix: str, reserved: Iterable[str] = ()) -> None:
    """Raise ValueError unless ``name`` may be a device's ESPHome name (and so own the topic root ``name/``)."""
    if not ESPHOME_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an ESPHome node name (lower-case letters, digits and '-', 1-31)")
    taken = RESERVED_FIRST_LEVELS | {discovery_prefix.split("/")[0], *reserved}
    if name in taken:
        raise ValueError(f"{name!r} is a topic root the hub uses; an ESPHome node may not be named so")


def mosquitto_block(devices: Iterable[DeviceCredential], discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> str:
    """The generated part of Mosquitto's ACL file: one ``user`` block per device bound to an ESPHome name."""
    lines = [BLOCK_BEGIN, BLOCK_NOTE]
    for device in sorted(devices, key=lambda device: device.username):
        if not device.esphome_name:
            continue
        lines.append(f"user {device.username}")
        lines += [f"topic {access} {topic}" for access, topic in _esphome_rules(device.esphome_name, discovery_prefix)]
    lines.append(BLOCK_END)
    return "\n".join(lines) + "\n"
