"""The ``hub.data`` key of the plugin's runtime (private to the plugin and its CLI commands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub import HubKey

if TYPE_CHECKING:
    from .runtime import OtaRuntime

DATA_OTA: HubKey[OtaRuntime] = HubKey("ota.runtime")
