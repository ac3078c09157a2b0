"""The wall clock jumping forward or back (NTP stepping, an operator setting the date) marks no node offline or online.

Presence measures silence on the monotonic clock; the wall clock only stamps status changes.  A fleet of
``NODES`` nodes reports every ``INTERVAL`` seconds on a :class:`~hub.testing.FakeClock`, whose ``jump``
moves the wall clock alone.  After an hour forward and two hours back not one status changes, and a node
that really falls silent is still marked offline after its allowed silence, not an hour late.
"""

from __future__ import annotations

from hub import EVENT_NODE_STATUS_CHANGED, REASON_TIMEOUT, STATUS_OFFLINE, STATUS_ONLINE
from hub.plugins.presence import DATA_PRESENCE
from hub.testing import FakeClock

NODES = 100
INTERVAL = 10.0
TIMEOUT = 30.0
MACS = [f"24:0a:c4:cc:00:{i:02x}" for i in range(NODES)]


async def test_clock_jumps_change_no_status(hub_factory) -> None:
    clock = FakeClock()
    hub = await hub_factory(
        {"presence": {"timeout": TIMEOUT, "initial_timeout": TIMEOUT, "check_interval": 60}},
        builtins=("hub.plugins.presence",),
        clock=clock,
    )
    tracker = hub.data[DATA_PRESENCE]
    changes: list[dict] = []
    registry = hub.registry

    def round_of_messages(skip: str | None = None) -> None:
        for mac in MACS:
            if mac != skip:
                node = registry.get_or_register(mac)
                registry.ensure_entity(node, "temperature")
                registry.report_states(node, {"temperature": 20.0}, clock())
        clock.advance(INTERVAL)
        tracker.check(clock())

    for _ in range(5):
        round_of_messages()
    assert all(registry.get(mac).status == STATUS_ONLINE for mac in MACS)
    hub.bus.listen(EVENT_NODE_STATUS_CHANGED, lambda event: changes.append(event.data))

    clock.jump(3600)  # an hour forward: nobody was silent for an hour
    assert tracker.check(clock()) == 0
    round_of_messages()
    clock.jump(-7200)  # two hours back: everybody's last message now lies "in the future"
    assert tracker.check(clock()) == 0
    for _ in range(3):
        round_of_messages()
    assert changes == [], f"a clock jump changed {len(changes)} statuses, e.g. {changes[:3]}"

    silent = MACS[0]  # this one really stops: offline after its allowed silence, measured monotonically
    allowed = tracker.allowed_silence(silent)
    rounds = 0
    while registry.get(silent).status == STATUS_ONLINE:
        round_of_messages(skip=silent)
        rounds += 1
        assert rounds * INTERVAL <= allowed + INTERVAL, "the silent node was not marked offline in time"
    assert [(c["node_id"], c["new"], c["reason"]) for c in changes] == [(silent, STATUS_OFFLINE, REASON_TIMEOUT)]
