"""Helpers shared by the esp32_node plugin's tests (a module with a unique name, unlike conftest)."""

from __future__ import annotations

import random
from typing import Any

from hub import Event

NOW = 1_700_000_000.0
"""The test clock: 2023-11-14T22:13:20Z."""


class Recorder:
    """Every event the hub fires, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.event_type == event_type]


def random_mac() -> str:
    """A fresh MAC so tests against the shared broker never see each other's nodes."""
    return ":".join(f"{random.randrange(256):02X}" for _ in range(6))
