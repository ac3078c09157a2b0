"""``esphome/discover/<name>``: the device info an ESPHome node publishes (retained) when it connects.

With ``mqtt: discover_ip: true`` (the default) a node publishes, e.g.::

    esphome/discover/climate-1  {"ip": "192.168.1.23", "name": "climate-1", "friendly_name": "Climate 1",
                                  "version": "2026.10.0", "mac": "aabbccddeeff", "platform": "ESP32",
                                  "board": "esp32dev", "network": "wifi"}

(plus ``ip1``… for more addresses, ``port`` with the native API, ``project_name``
and ``project_version`` for a named project, ``api_encryption`` when the API is
encrypted).  The hub keys the node by the MAC, stores the fields as node
attributes and the version as its ``firmware_version`` (the project's version
when there is one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from hub import normalize_mac

from .contract import REJECT_BAD_DEVICE_INFO, REJECT_NOT_OBJECT, Invalid

_ATTRIBUTES: Final = {
    "name": "esphome_name",
    "friendly_name": "friendly_name",
    "version": "esphome_version",
    "platform": "platform",
    "board": "board",
    "network": "network",
    "project_name": "project_name",
    "project_version": "project_version",
    "api_encryption": "api_encryption",
    "ip": "ip",
}
"""Payload field → node attribute."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One ``esphome/discover/<name>`` message, checked."""

    node_id: str
    name: str
    friendly_name: str | None
    firmware_version: str | None
    attributes: dict[str, Any]


def parse_device_info(topic: str, data: object) -> DeviceInfo:
    """The device info in an already parsed payload; :class:`Invalid` when it is not one."""
    if not isinstance(data, dict):
        raise Invalid(REJECT_NOT_OBJECT, f"got {type(data).__name__}")
    try:
        node_id = normalize_mac(data.get("mac"))  # type: ignore[arg-type]
    except ValueError as err:
        raise Invalid(REJECT_BAD_DEVICE_INFO, f"no usable mac: {str(data.get('mac'))[:40]!r}") from err
    name = data.get("name")
    topic_name = topic.rsplit("/", 1)[-1]
    if not isinstance(name, str) or name != topic_name:
        raise Invalid(REJECT_BAD_DEVICE_INFO, f"name {str(name)[:40]!r} is not the topic's {topic_name[:40]!r}")
    attributes: dict[str, Any] = {}
    for field, attribute in _ATTRIBUTES.items():
        value = data.get(field)
        if isinstance(value, str) and value:
            attributes[attribute] = value[:128]
    addresses = [data[key] for key in sorted(data) if key.startswith("ip") and key[2:].isdigit()]
    extra = [value[:64] for value in addresses if isinstance(value, str) and value]
    if extra:
        attributes["ip_addresses"] = extra[:8]
    port = data.get("port")
    if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
        attributes["api_port"] = port
    version = attributes.get("project_version") or attributes.get("esphome_version")
    friendly = attributes.get("friendly_name")
    return DeviceInfo(node_id, name, friendly, version, attributes)
