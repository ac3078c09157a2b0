"""Helpers shared by the esphome plugin's tests (a module with a unique name, unlike conftest)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from esphome_messages import Message

from hub import Event, Hub
from hub.testing import services_required

HOST_NODE = Path(__file__).with_name("data") / "host-node.yaml"
"""A node for ESPHome's host platform: compiles offline with g++ (the tests' real compile)."""


def esphome_executable() -> Path:
    """``$HUB_ESPHOME`` (else ``esphome`` on PATH); skips the test without it, fails under HUB_REQUIRE_SERVICES=1."""
    configured = os.environ.get("HUB_ESPHOME")
    found = configured or shutil.which("esphome")
    if found and Path(found).is_file() and os.access(found, os.X_OK):
        return Path(found)
    reason = (
        f"HUB_ESPHOME={configured!r} is not an executable"
        if configured
        else "the esphome executable is not available: run scripts/esphome-env and set HUB_ESPHOME to what it prints"
    )
    if services_required():
        pytest.fail(f"{reason} (HUB_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def host_firmware(directory: Path) -> Path:
    """A firmware folder holding the host node (and an empty secrets.yaml: it uses none)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(HOST_NODE, directory / HOST_NODE.name)
    (directory / "secrets.yaml").write_text("# the host node uses no secrets\n")
    return directory


class Recorder:
    """Every event the hub fires, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.event_type == event_type]


def feed(hub: Hub, *messages: Message) -> None:
    """Dispatch messages as the mqtt transport would."""
    for topic, payload, retained in messages:
        hub.messages.dispatch(topic, payload, retained)
