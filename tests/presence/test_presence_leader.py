"""Presence leader election on PostgreSQL: exactly one of several processes marks nodes offline, and another takes
over when it stops.  Two worker hubs share one real database; no clock is faked (the election runs on its own
timers), every wait is on a condition."""

from __future__ import annotations

import pytest

from hub import REASON_TIMEOUT, ROLE_WORKER, STATUS_OFFLINE, STATUS_ONLINE
from hub.plugins.presence import DATA_LEADERSHIP
from hub.testing import wait_until

pytestmark = pytest.mark.postgres

BUILTINS = ("hub.plugins.storage", "hub.plugins.presence")


def timeouts(hub) -> float:
    return hub.metrics.registry.get_sample_value("hub_status_changes_total", {"reason": REASON_TIMEOUT}) or 0.0


async def test_one_leader_marks_silent_nodes_offline_and_another_takes_over(hub_postgres_url, hub_factory):
    config = {
        "storage": {"db_url": hub_postgres_url, "flush_interval": 0.05},
        "presence": {"timeout": 0.5, "initial_timeout": 0.5, "check_interval": 0.05},
    }
    hubs = [await hub_factory(config, builtins=BUILTINS, role=ROLE_WORKER) for _ in range(2)]

    def leaders() -> list:
        found = [hub for hub in hubs if DATA_LEADERSHIP in hub.data and hub.data[DATA_LEADERSHIP].leader]
        assert len(found) <= 1, "two leaders at once"
        return found

    [leader] = await wait_until(leaders, timeout=15, message="a leader")
    follower = next(hub for hub in hubs if hub is not leader)

    async def silent_node_goes_offline(hearer, node_id: str, judge) -> None:
        """``hearer`` hears the node once; it stays silent; ``judge`` (maybe another process) marks it offline."""
        registry = hearer.registry
        node = registry.get_or_register(node_id)
        registry.report_availability(node, True)
        assert node.status == STATUS_ONLINE
        await hearer.durability.wait_committed()  # the database knows it: the source of truth for the leader

        def offline() -> bool:
            leaders()
            judged = judge.registry.get(node_id)
            return judged is not None and judged.status == STATUS_OFFLINE

        await wait_until(offline, timeout=15, message=f"{node_id} marked offline by the leader")

    # The follower hears a node the leader never heard: the leader still judges it, from the database.
    await silent_node_goes_offline(follower, "aa:00:00:00:00:01", leader)
    assert timeouts(leader) == 1 and timeouts(follower) == 0
    # The leader stops (a rolling restart): the follower takes over and judges from then on.
    await leader.async_stop()
    hubs.remove(leader)
    await wait_until(lambda: follower.data[DATA_LEADERSHIP].leader, timeout=15, message="the follower elected")
    await silent_node_goes_offline(follower, "aa:00:00:00:00:02", follower)
    assert timeouts(follower) == 1
