"""Fixtures for the MQTT tests; the helpers themselves are in mqtt_helpers.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hub.testing import PrivateMosquitto, unavailable
from hub.testing.mosquitto import mosquitto_binary


@pytest.fixture
async def private_mosquitto(tmp_path: Path) -> AsyncIterator[Callable[..., PrivateMosquitto]]:
    """Factory of private Mosquittos on free ports (not started yet); every one is stopped when the test ends."""
    if mosquitto_binary() is None:
        unavailable("mosquitto is not installed")
    brokers: list[PrivateMosquitto] = []

    def factory(name: str = "mosquitto", *, config: str | None = None) -> PrivateMosquitto:
        broker = PrivateMosquitto(tmp_path / name, config=config)
        brokers.append(broker)
        return broker

    yield factory
    for broker in brokers:
        await broker.async_stop()
