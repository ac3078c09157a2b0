"""The ``esphome:`` config section."""

from __future__ import annotations

from typing import Any, Final

import voluptuous as vol

from .native.config import SCHEMA as NATIVE_API_SCHEMA

SECTION: Final = "esphome"
DEFAULT_PREFIX: Final = "homeassistant"
DEFAULT_COMMAND_TIMEOUT: Final = 10.0


def _prefix(value: Any) -> str:
    """A discovery prefix is a plain topic: levels without wildcards, no leading or trailing slash."""
    if not isinstance(value, str) or not value or value.startswith("/") or value.endswith("/"):
        raise vol.Invalid("expected a topic prefix such as 'homeassistant'")
    if "+" in value or "#" in value or "//" in value:
        raise vol.Invalid("a discovery prefix has no wildcards and no empty levels")
    return value


CONFIG_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("discovery_prefix", default=DEFAULT_PREFIX): _prefix,
        vol.Optional("device_info", default=True): bool,
        vol.Optional("firmware_dir", default="firmware/esphome"): str,
        vol.Optional("executable", default=None): vol.Any(None, str),
        vol.Optional("native_api", default=dict): NATIVE_API_SCHEMA,
        vol.Optional("command_timeout", default=DEFAULT_COMMAND_TIMEOUT): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=3600.0)
        ),
    }
)
"""``discovery_prefix``: where Home Assistant discovery configs are read (ESPHome's ``mqtt: discovery_prefix``).
``device_info``: also read ESPHome's ``esphome/discover/<name>`` (IP, version, board, MAC).
``firmware_dir``: the node YAMLs (relative to the working directory).  ``executable``: the ``esphome`` command
(default: ``esphome`` on PATH).
``native_api``: nodes connected over ESPHome's native API (:mod:`.native.config`).  ``command_timeout``: seconds a
switch or number has to report the state a command asked for (:mod:`.commands`)."""
