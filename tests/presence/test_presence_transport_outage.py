"""A broker outage makes the hub deaf: presence must not time the fleet out meanwhile, nor right after."""

from __future__ import annotations

from hub.core.const import (
    EVENT_TRANSPORT_CONNECTED,
    EVENT_TRANSPORT_DISCONNECTED,
    REASON_TIMEOUT,
    STATUS_OFFLINE,
    STATUS_ONLINE,
)

T0 = 1_700_000_000.0
A = "aa:bb:cc:dd:ee:01"
B = "aa:bb:cc:dd:ee:02"


async def test_outage_pauses_timeouts_and_shifts_silence_by_its_length(make_fleet):
    fleet = await make_fleet({"timeout": 10, "initial_timeout": 90})
    fleet.message(A, T0)
    fleet.message(B, T0 + 60)  # B had been quiet for 30 s less than A when the broker went away

    fleet.clock.now = T0 + 70
    fleet.hub.bus.fire(EVENT_TRANSPORT_DISCONNECTED, {"transport": "mqtt"})
    assert fleet.check(T0 + 500) == 0  # deaf: silence is no evidence
    assert (fleet.status(A), fleet.status(B)) == (STATUS_ONLINE, STATUS_ONLINE)

    fleet.clock.now = T0 + 570  # back after a 500 s outage
    fleet.hub.bus.fire(EVENT_TRANSPORT_CONNECTED, {"transport": "mqtt"})
    # A had been silent 70 s of its 90 s when the hub went deaf: 20 s more now; B 10 s of 90: 80 s more.
    assert fleet.check(T0 + 589) == 0
    assert fleet.check(T0 + 591) == 1
    assert (fleet.status(A), fleet.status(B)) == (STATUS_OFFLINE, STATUS_ONLINE)
    assert fleet.changes[-1]["reason"] == REASON_TIMEOUT
    assert fleet.check(T0 + 651) == 1
    assert fleet.status(B) == STATUS_OFFLINE


async def test_a_node_heard_after_the_outage_is_simply_online(make_fleet):
    fleet = await make_fleet({"timeout": 10, "initial_timeout": 90})
    fleet.message(A, T0)
    fleet.clock.now = T0 + 5
    fleet.hub.bus.fire(EVENT_TRANSPORT_DISCONNECTED, {"transport": "mqtt"})
    fleet.clock.now = T0 + 200
    fleet.hub.bus.fire(EVENT_TRANSPORT_CONNECTED, {"transport": "mqtt"})
    fleet.message(A, T0 + 201)
    assert fleet.check(T0 + 250) == 0
    assert fleet.status(A) == STATUS_ONLINE
    assert fleet.tracker.learned_interval(A) is None  # the gap across the outage is not a rhythm
