"""Presence across a hub restart: restored statuses, silence counted only while the hub listened."""

from __future__ import annotations

import asyncio

from hub import Manifest
from hub.core.const import REASON_TIMEOUT, STATUS_OFFLINE, STATUS_ONLINE, STATUS_UNKNOWN
from hub.core.hub import Hub
from hub.core.plugins.hookspecs import hookimpl
from hub.core.registry import Node
from hub.core.roles import ROLE_CLI
from hub.plugins.presence import DATA_PRESENCE
from hub.testing import wait_until

T0 = 1_700_000_000.0  # where the fake clock starts (conftest.FakeClock)

FRESH = "aa:bb:cc:00:00:01"
"""Heard 2 s before the old hub stopped."""
STALE = "aa:bb:cc:00:00:02"
"""Already silent for 80 s when the old hub stopped."""
DOWN = "aa:bb:cc:00:00:03"
"""Offline (by LWT) before the restart."""
NEVER = "aa:bb:cc:00:00:04"
"""Known, status never decided."""


class Restore:
    """Does what storage does in ``hub_setup``: puts the saved fleet back into the registry.

    Named storage, as presence sets up after storage."""

    MANIFEST = Manifest(name="storage")

    def __init__(self, stopped_at: float) -> None:
        self.stopped_at = stopped_at

    @hookimpl
    def hub_setup(self, hub: Hub) -> None:
        s = self.stopped_at
        hub.registry.restore(
            [
                Node(FRESH, "fresh", status=STATUS_ONLINE, status_since=s - 500, last_seen=s - 2),
                Node(STALE, "stale", status=STATUS_ONLINE, status_since=s - 500, last_seen=s - 80),
                Node(DOWN, "down", status=STATUS_OFFLINE, status_since=s - 30, last_seen=s - 60),
                Node(NEVER, "never", status=STATUS_UNKNOWN),
            ]
        )


async def test_restored_statuses_survive_and_are_counted(make_fleet):
    fleet = await make_fleet(plugins=[(Restore(stopped_at=T0 - 5), "storage")])
    assert [fleet.status(n) for n in (FRESH, STALE, DOWN, NEVER)] == ["online", "online", "offline", "unknown"]
    assert fleet.changes == []  # restoring is not a change
    assert (fleet.metric("nodes_online"), fleet.metric("nodes_offline")) == (2, 1)


async def test_short_restart_times_out_from_the_restored_last_seen(make_fleet):
    """Down 5 s: silence before the stop still counts, the 5 s of deafness do not."""
    fleet = await make_fleet({"initial_timeout": 90}, plugins=[(Restore(stopped_at=T0 - 5), "storage")])
    # Newest last_seen (FRESH, stopped_at - 2) estimates when the old hub last heard anyone: downtime = 7 s.
    assert fleet.tracker.deadline(STALE) == (T0 - 85) + 7 + 90
    assert fleet.tracker.deadline(FRESH) == (T0 - 7) + 7 + 90
    assert fleet.check(T0 + 1) == 0
    assert fleet.check(T0 + 11.9) == 0
    assert fleet.check(T0 + 12) == 1  # STALE: 80 s silent before + 10 s after = 90 s heard silence
    assert fleet.changes[-1]["node_id"] == STALE and fleet.changes[-1]["reason"] == REASON_TIMEOUT
    assert fleet.check(T0 + 89) == 0
    assert fleet.check(T0 + 90) == 1  # FRESH
    assert (fleet.metric("nodes_online"), fleet.metric("nodes_offline")) == (0, 3)


async def test_long_restart_does_not_mark_the_fleet_offline(make_fleet):
    """Down two hours: nobody is timed out at start; a node that talks again stays online."""
    fleet = await make_fleet({"initial_timeout": 90}, plugins=[(Restore(stopped_at=T0 - 7200), "storage")])
    assert fleet.check(T0 + 1) == 0
    assert fleet.status(FRESH) == STATUS_ONLINE and fleet.status(STALE) == STATUS_ONLINE
    fleet.message(FRESH, T0 + 30)
    assert fleet.check(T0 + 12) == 1  # STALE keeps the 10 s it had left
    assert fleet.status(STALE) == STATUS_OFFLINE
    assert fleet.check(T0 + 30 + 89) == 0  # FRESH: heard again after the restart, 90 s from then
    assert fleet.status(FRESH) == STATUS_ONLINE
    # The gap across the restart is not learned as FRESH's interval.
    assert fleet.tracker.learned_interval(FRESH) is None


async def test_restored_offline_node_comes_back_on_message(make_fleet):
    fleet = await make_fleet(plugins=[(Restore(stopped_at=T0 - 5), "storage")])
    fleet.message(DOWN, T0 + 3)
    assert fleet.status(DOWN) == STATUS_ONLINE
    assert fleet.changes[-1]["old"] == STATUS_OFFLINE
    fleet.check(T0 + 3 + 89)
    assert fleet.status(DOWN) == STATUS_ONLINE
    fleet.check(T0 + 3 + 90)
    assert fleet.status(DOWN) == STATUS_OFFLINE


async def test_cli_role_restores_but_never_times_out(make_fleet, hub_clock):
    """``hub nodes`` shows the saved statuses: no checker runs, nothing is judged."""
    fleet = await make_fleet(plugins=[(Restore(stopped_at=T0 - 7200), "storage")], role=ROLE_CLI)
    assert fleet.tracker.deadline(FRESH) is None
    assert [t.get_name() for t in fleet.hub._tasks] == []
    assert fleet.status(STALE) == STATUS_ONLINE


async def test_background_task_runs_the_check(hub_factory, hub_clock):
    """With a short check_interval the hub's own task marks a silent node offline (fake time, real ticks)."""
    hub = await hub_factory(
        {"presence": {"check_interval": 0.01, "timeout": 5, "initial_timeout": 5}},
        builtins=("hub.plugins.presence",),
        clock=hub_clock,
    )
    node = hub.registry.get_or_register(FRESH)
    hub.registry.report_availability(node, True)
    hub_clock.now += 6
    await wait_until(lambda: node.status == STATUS_OFFLINE, message="the background check to mark the node offline")
    assert node.status_reason == REASON_TIMEOUT


async def test_stopping_the_hub_stops_the_checker(hub_factory, hub_clock):
    """A hub shutting down goes deaf: it must not time out the fleet it can no longer hear."""
    hub = await hub_factory(
        {"presence": {"check_interval": 0.01, "timeout": 5, "initial_timeout": 5}},
        builtins=("hub.plugins.presence",),
        clock=hub_clock,
    )
    node = hub.registry.get_or_register(FRESH)
    hub.registry.report_availability(node, True)
    await hub.plugins.call_async("hub_stop", hub=hub)
    hub_clock.now += 60
    await asyncio.sleep(0.05)
    assert node.status == STATUS_ONLINE
    assert hub.data[DATA_PRESENCE].check(hub_clock.now) == 1  # the rule still holds when asked directly
