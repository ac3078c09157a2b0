"""The actions a command may carry, each with a voluptuous schema for its params.

The built-in actions are what every ESP32 node of the JSON contract understands;
a plugin adds its own in ``hub_setup`` (``hub.commands.actions.register(...)``),
e.g. ``RELAY_CONTROL {relay: 1..5, state: bool}``.  Params are validated here,
before anything is stored or published, so a bad request is a clear 4xx and
never reaches a node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import voluptuous as vol
from voluptuous.humanize import humanize_error

from ..errors import CommandRejected

REBOOT: Final = "REBOOT"
STATUS_REQUEST: Final = "STATUS_REQUEST"
FIRMWARE_UPDATE: Final = "FIRMWARE_UPDATE"

ACTION_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
"""Action names are upper-case identifiers, as the JSON contract spells them."""


@dataclass(frozen=True, slots=True)
class Action:
    """A registered action: its name, the schema of its params, and what it does (shown in the API)."""

    name: str
    schema: vol.Schema
    description: str
    owner: str
    """The plugin (or ``core``) that registered it."""


class ActionRegistry:
    """Actions by name."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self.register(REBOOT, {}, "Restart the node.")
        self.register(STATUS_REQUEST, {}, "Ask the node to publish its telemetry now.")
        self.register(
            FIRMWARE_UPDATE,
            {
                vol.Required("url"): vol.All(str, vol.Length(min=1, max=2048)),
                vol.Required("version"): vol.All(str, vol.Length(min=1, max=64)),
                vol.Optional("sha256"): vol.Match(r"^[0-9a-f]{64}$"),
                vol.Optional("md5"): vol.Match(r"^[0-9a-f]{32}$"),
                vol.Optional("size"): vol.All(int, vol.Range(min=1)),
            },
            "Download the firmware at url and install it.",
        )

    def register(self, name: str, params: dict[Any, Any] | vol.Schema, description: str, owner: str = "core") -> None:
        """Offer an action; ValueError for a malformed name or one another plugin registered."""
        if not ACTION_NAME.fullmatch(name):
            raise ValueError(f"action names are upper-case identifiers (A-Z, 0-9, _), not {name!r}")
        existing = self._actions.get(name)
        if existing is not None and existing.owner != owner:
            raise ValueError(f"action {name} is already registered by {existing.owner}")
        schema = params if isinstance(params, vol.Schema) else vol.Schema(params)
        self._actions[name] = Action(name, schema, description, owner)

    def get(self, name: str) -> Action | None:
        """The action called ``name``, or None."""
        return self._actions.get(name)

    def list(self) -> list[Action]:
        """Every action, by name."""
        return [self._actions[name] for name in sorted(self._actions)]

    def validate(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """The action's params, validated and with defaults filled in; CommandRejected otherwise."""
        action = self._actions.get(name)
        if action is None:
            known = ", ".join(sorted(self._actions))
            raise CommandRejected(f"unknown action {name!r} (known: {known})", code="unknown_action")
        try:
            return action.schema(params)
        except vol.Invalid as err:
            raise CommandRejected(f"{name}: {humanize_error(params, err)}", code="invalid_params") from err
