"""Fixtures for presence tests: a hub with only the presence built-in, driven by a fake clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hub.core.const import EVENT_NODE_STATUS_CHANGED
from hub.core.hub import Hub
from hub.plugins.presence import DATA_PRESENCE, PresenceTracker
from hub.testing import FakeClock

T0 = 1_700_000_000.0


class Fleet:
    """A hub with presence only, plus helpers that act like a contract plugin reporting node traffic."""

    def __init__(self, hub: Hub, clock: FakeClock) -> None:
        self.hub = hub
        self.clock = clock
        self.tracker: PresenceTracker = hub.data[DATA_PRESENCE]
        self.changes: list[dict[str, Any]] = []
        hub.bus.listen(EVENT_NODE_STATUS_CHANGED, lambda event: self.changes.append(event.data))

    def message(self, node_id: str, at: float | None = None) -> None:
        """``node_id`` published telemetry at ``at`` (default: now)."""
        if at is not None:
            self.clock.now = at
        registry = self.hub.registry
        node = registry.get_or_register(node_id)
        registry.ensure_entity(node, "temperature", unit="°C")
        registry.report_states(node, {"temperature": 21.5}, self.clock.now)

    def availability(self, node_id: str, online: bool, at: float | None = None) -> None:
        """``node_id`` (or its LWT) said online/offline at ``at``."""
        if at is not None:
            self.clock.now = at
        node = self.hub.registry.get_or_register(node_id)
        self.hub.registry.report_availability(node, online)

    def check(self, at: float) -> int:
        """Move the clock to ``at`` and run the silence check there."""
        self.clock.now = at
        return self.tracker.check(at)

    def status(self, node_id: str) -> str:
        node = self.hub.registry.get(node_id)
        assert node is not None
        return node.status

    def metric(self, name: str, **labels: str) -> float:
        return self.hub.metrics.value(name, **labels)


MakeFleet = Callable[..., Awaitable[Fleet]]


@pytest.fixture
def make_fleet(hub_factory, hub_clock: FakeClock) -> MakeFleet:
    """``await make_fleet(presence={...}, plugins=[...])``: a started hub with presence and a fake clock.

    ``check_interval`` defaults to a minute so the background task never runs during a test: tests
    call ``check(now)`` themselves, which is what the task does.
    """

    async def factory(presence: dict[str, Any] | None = None, plugins=(), **kwargs: Any) -> Fleet:
        section = {"check_interval": 60, **(presence or {})}
        hub = await hub_factory(
            {"presence": section}, builtins=("hub.plugins.presence",), plugins=plugins, clock=hub_clock, **kwargs
        )
        return Fleet(hub, hub_clock)

    return factory
