"""Helpers shared by the esphome plugin's tests (a module with a unique name, unlike conftest)."""

from __future__ import annotations

from typing import Any

from esphome_messages import Message

from hub import Event, Hub


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
