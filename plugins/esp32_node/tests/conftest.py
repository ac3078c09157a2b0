"""Fixtures for the esp32_node plugin's tests: an in-process hub with only this plugin, and its events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import hub_esp32_node.plugin
import pytest
from esp32_testing import Observer, Recorder

from hub import MATCH_ALL, Hub
from hub.testing import FakeClock


@pytest.fixture
async def hub(hub_factory: Any, hub_clock: FakeClock) -> AsyncIterator[Hub]:
    """A started hub with no built-ins and this plugin; fails the test if any handler raised."""
    hub = await hub_factory(builtins=(), plugins=[(hub_esp32_node.plugin, "esp32_node")], clock=hub_clock)
    assert "esp32_node" in hub.plugins.info, hub.plugins.failed
    yield hub
    assert hub.messages.handler_errors == 0, "a handler raised into the router"


@pytest.fixture
def events(hub: Hub) -> Recorder:
    recorder = Recorder()
    hub.bus.listen(MATCH_ALL, recorder)
    return recorder


@pytest.fixture
def observer(hub_mqtt_url: str) -> Iterator[Observer]:
    """An independent paho-mqtt subscriber to chosen nodes' topics on the shared broker."""
    observer = Observer(hub_mqtt_url)
    yield observer
    observer.close()
