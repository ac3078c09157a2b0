"""The events the OTA plugin fires on ``hub.bus`` (typed; WebSocket clients subscribe to them by name)."""

from __future__ import annotations

from typing import Any, Final, TypedDict

from hub import EventType


class OtaFirmwareChangedData(TypedDict):
    """``ota_firmware_changed``: an image was added to or removed from the catalogue."""

    action: str
    """``added`` or ``removed``."""
    firmware: dict[str, Any]
    """The catalogue row (``Firmware.as_dict()``)."""
    by: str
    """Who did it: a user name, or ``cli:<os user>``."""


EVENT_OTA_FIRMWARE_CHANGED: Final[EventType[OtaFirmwareChangedData]] = EventType("ota_firmware_changed")


class OtaRolloutUpdatedData(TypedDict):
    """``ota_rollout_updated``: a rollout's progress, at most a few times a second while it changes."""

    rollout: dict[str, Any]
    """Its summary: settings, ``status``, ``stage``, ``stage_sizes``, ``counts`` by node status, ``history``, …"""
    nodes: list[dict[str, Any]]
    """The nodes whose progress changed since the last event (``node_id``, ``status``, ``attempts``, ``detail``, …)."""


EVENT_OTA_ROLLOUT_UPDATED: Final[EventType[OtaRolloutUpdatedData]] = EventType("ota_rollout_updated")
