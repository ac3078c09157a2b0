"""Fixtures for the MQTT tests; the helpers themselves are in mqtt_helpers.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from mqtt_helpers import Mosquitto


@pytest.fixture
async def private_mosquitto(tmp_path: Path) -> AsyncIterator[Callable[..., Mosquitto]]:
    """Factory of private Mosquittos on free ports (not started yet); every one is stopped when the test ends."""
    brokers: list[Mosquitto] = []

    def factory(name: str = "mosquitto", *, config: str | None = None) -> Mosquitto:
        broker = Mosquitto(tmp_path / name, config=config)
        brokers.append(broker)
        return broker

    yield factory
    for broker in brokers:
        await broker.stop()
