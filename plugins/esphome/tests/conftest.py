"""Fixtures for the esphome plugin's tests: an in-process hub with only this plugin, and its events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import hub_esphome.plugin
import pytest
from esphome_testing import Recorder

from hub import MATCH_ALL, Hub
from hub.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def hub(hub_factory: Any, clock: FakeClock) -> AsyncIterator[Hub]:
    """A started hub with no built-ins and this plugin; fails the test if any handler raised."""
    hub = await hub_factory(builtins=(), plugins=[(hub_esphome.plugin, "esphome")], clock=clock)
    assert "esphome" in hub.plugins.info, hub.plugins.failed
    yield hub
    assert hub.messages.handler_errors == 0, "a handler raised into the router"


@pytest.fixture
def events(hub: Hub) -> Recorder:
    recorder = Recorder()
    hub.bus.listen(MATCH_ALL, recorder)
    return recorder
