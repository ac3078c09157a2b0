"""Status survives a real restart: storage (SQLite) saves it, restores it, presence carries on from it."""

from __future__ import annotations

from hub.core.const import REASON_LWT, REASON_TIMEOUT, STATUS_OFFLINE, STATUS_ONLINE
from hub.plugins.presence import DATA_PRESENCE

ALIVE = "aa:bb:cc:00:01:01"
QUIET = "aa:bb:cc:00:01:02"
DEAD = "aa:bb:cc:00:01:03"

BUILTINS = ("hub.plugins.storage", "hub.plugins.presence")


async def test_status_survives_a_restart_with_sqlite(hub_factory, hub_clock, tmp_path):
    config = {"hub": {"data_dir": str(tmp_path / "data")}, "presence": {"check_interval": 60, "initial_timeout": 90}}
    first = await hub_factory(config, builtins=BUILTINS, clock=hub_clock)
    registry = first.registry
    t0 = hub_clock.now
    for node_id, at in ((QUIET, t0 - 80), (ALIVE, t0 - 2), (DEAD, t0 - 30)):
        hub_clock.now = at
        node = registry.get_or_register(node_id)
        registry.ensure_entity(node, "temperature")
        registry.report_states(node, {"temperature": 20.0}, at)
    registry.report_availability(registry.get(DEAD), False, ts=t0 - 20)
    hub_clock.now = t0
    await first.async_stop()

    hub_clock.now = t0 + 5  # the hub was down for 5 s
    second = await hub_factory(config, builtins=BUILTINS, clock=hub_clock)
    restored = {n.node_id: (n.status, n.status_reason, n.last_seen) for n in second.registry}
    assert restored == {
        QUIET: (STATUS_ONLINE, "message", t0 - 80),
        ALIVE: (STATUS_ONLINE, "message", t0 - 2),
        DEAD: (STATUS_OFFLINE, REASON_LWT, t0 - 30),
    }
    assert (second.metrics.value("nodes_online"), second.metrics.value("nodes_offline")) == (2, 1)
    tracker = second.data[DATA_PRESENCE]
    # Heard silence only: QUIET had 78 s of silence before the stop (relative to the newest last_seen),
    # so it gets 12 s after the restart; ALIVE the full 90 s.
    assert tracker.check(t0 + 5 + 11) == 0
    assert tracker.check(t0 + 5 + 12) == 1
    assert second.registry.get(QUIET).status == STATUS_OFFLINE
    assert second.registry.get(QUIET).status_reason == REASON_TIMEOUT
    assert second.registry.get(ALIVE).status == STATUS_ONLINE
