"""Helpers shared by the esp32_node plugin's tests (a module with a unique name, unlike conftest)."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho

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


class Observer:
    """Subscribes to ``devices/{MAC}/#`` of chosen nodes and records what arrives, in order."""

    def __init__(self, hub_mqtt_url: str) -> None:
        parts = urlsplit(hub_mqtt_url)
        self.url = hub_mqtt_url
        self.messages: list[tuple[str, bytes, bool]] = []
        self._subscribed = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"esp32-obs-{uuid.uuid4().hex[:12]}")
        self._client.on_message = lambda _c, _u, msg: self.messages.append((msg.topic, msg.payload, msg.retain))
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self._client.loop_start()
        self._topics: list[str] = []

    def watch(self, *topic_macs: str) -> None:
        """Subscribe to these nodes' topics and wait for the broker to confirm."""
        self._subscribed.clear()
        self._topics += [f"devices/{mac}/status" for mac in topic_macs]
        self._client.subscribe([(f"devices/{mac}/#", 1) for mac in topic_macs])
        assert self._subscribed.wait(5)

    def of(self, topic: str) -> list[bytes]:
        return [payload for t, payload, _ in list(self.messages) if t == topic]

    def close(self) -> None:
        for topic in self._topics:  # leave no retained statuses behind on the shared broker
            self._client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        self._client.disconnect()
        self._client.loop_stop()
