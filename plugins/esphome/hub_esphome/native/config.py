"""``esphome: native_api:`` in config.yaml: which nodes the hub connects to over ESPHome's native API.

::

    esphome:
      native_api:
        auto_connect: false          # also connect nodes announced on esphome/discover/<name> with an API port
        keepalive: 20                # s between pings; the heartbeat probes every min(keepalive, 5) s
        nodes:
          - host: 192.168.1.23       # an IP address or a DNS name; never a .local name (that would be mDNS)
            port: 6053
            encryption_key: !secret climate_api_key    # the node's api: encryption: key (Noise PSK)
          - name: relay-1            # no host: its address comes from esphome/discover/relay-1
            encryption_key: !secret relay_api_key

No mDNS is ever sent: hosts are IP addresses or names resolved by the system's DNS, and
aioesphomeapi's zeroconf listener is switched off (see :mod:`.connection`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Any, Final

import voluptuous as vol

DEFAULT_PORT: Final = 6053
DEFAULT_KEEPALIVE: Final = 20.0

_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_NODE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
"""ESPHome's node names: lower-case letters, digits and hyphens (``esphome: name:``)."""


def is_mdns_name(host: str) -> bool:
    """A name only multicast DNS resolves: ``*.local``."""
    return host.rstrip(".").lower().endswith(".local")


def host(value: Any) -> str:
    """An IP address or a DNS name; ``.local`` names are refused, since resolving them means sending mDNS."""
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected an IP address or a host name")
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if _HOSTNAME.fullmatch(value) is None:
        raise vol.Invalid(f"{value!r} is neither an IP address nor a host name")
    if is_mdns_name(value):
        raise vol.Invalid(f"{value!r} is an mDNS name: the hub sends no mDNS; give the node's IP address or DNS name")
    return value


def encryption_key(value: Any) -> str:
    """The node's ``api: encryption: key``: 32 bytes, base64 (what ``esphome`` generates)."""
    if not isinstance(value, str):
        raise vol.Invalid("expected the base64 key from the node's api: encryption: key")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as err:
        raise vol.Invalid("the encryption key is not base64") from err
    if len(raw) != 32:
        raise vol.Invalid(f"the encryption key is {len(raw)} bytes, expected 32")
    return value.strip()


def _node_name(value: Any) -> str:
    if not isinstance(value, str) or _NODE_NAME.fullmatch(value) is None:
        raise vol.Invalid("expected an ESPHome node name (lower-case letters, digits, hyphens)")
    return value


def _host_or_name(node: dict[str, Any]) -> dict[str, Any]:
    if node.get("host") is None and node.get("name") is None:
        raise vol.Invalid("a native API node needs a host, or a name whose esphome/discover/<name> gives its address")
    return node


NODE_SCHEMA: Final = vol.All(
    vol.Schema(
        {
            vol.Optional("host", default=None): vol.Any(None, host),
            vol.Optional("port", default=DEFAULT_PORT): vol.All(int, vol.Range(min=1, max=65535)),
            vol.Optional("name", default=None): vol.Any(None, _node_name),
            vol.Optional("encryption_key", default=None): vol.Any(None, encryption_key),
            vol.Optional("password", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=256))),
        }
    ),
    _host_or_name,
)
"""One node: ``host`` and/or ``name`` (the name, when given, must be what the node reports: a DHCP lease
that moved to another device is refused), ``encryption_key``, ``password`` (ESPHome before 2026.1 only)."""


def _unique(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[Any] = set()
    for node in nodes:
        for key in (("host", node["host"], node["port"]), ("name", node["name"])):
            if key[1] is None:
                continue
            if key in seen:
                raise vol.Invalid(f"native API node {key[1]!r} is listed twice")
            seen.add(key)
    return nodes


SCHEMA: Final = vol.Schema(
    {
        vol.Optional("auto_connect", default=False): bool,
        vol.Optional("keepalive", default=DEFAULT_KEEPALIVE): vol.All(
            vol.Coerce(float), vol.Range(min=1.0, max=3600.0)
        ),
        vol.Optional("nodes", default=list): vol.All([NODE_SCHEMA], _unique),
    }
)
"""The ``native_api:`` section; see the module docstring."""
