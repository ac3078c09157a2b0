"""Presence rules, driven by a fake clock: online on message, offline on LWT or after silence."""

from __future__ import annotations

import logging
import random

import pytest

from hub.core.const import REASON_LWT, REASON_MESSAGE, REASON_TIMEOUT, STATUS_OFFLINE, STATUS_ONLINE

T0 = 1_700_000_000.0  # where the fake clock starts (conftest.FakeClock)

A = "aa:bb:cc:dd:ee:01"
B = "aa:bb:cc:dd:ee:02"


async def test_online_on_first_message(make_fleet, caplog):
    fleet = await make_fleet()
    caplog.set_level(logging.DEBUG, logger="hub.plugins.presence")
    fleet.message(A, T0)
    fleet.message(A, T0 + 5)  # already online: no second change, no second log line
    assert fleet.status(A) == STATUS_ONLINE
    assert fleet.changes == [{"node_id": A, "old": "unknown", "new": "online", "reason": REASON_MESSAGE, "ts": T0}]
    # A first-seen node is logged by its integration (rate-limited); presence only at DEBUG.
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.DEBUG, f"node {A} online (message)")]
    assert fleet.metric("nodes_online") == 1
    assert fleet.metric("status_changes", reason=REASON_MESSAGE) == 1


async def test_online_status_message_counts_as_message(make_fleet):
    fleet = await make_fleet()
    fleet.availability(A, True, T0)
    assert fleet.status(A) == STATUS_ONLINE
    assert fleet.changes[-1]["reason"] == REASON_MESSAGE


async def test_lwt_marks_offline_at_once(make_fleet, caplog):
    fleet = await make_fleet()
    caplog.set_level(logging.INFO, logger="hub.plugins.presence")
    fleet.message(A, T0)
    fleet.availability(A, False, T0 + 2)
    assert fleet.status(A) == STATUS_OFFLINE
    assert fleet.changes[-1] == {"node_id": A, "old": "online", "new": "offline", "reason": REASON_LWT, "ts": T0 + 2}
    fleet.availability(A, False, T0 + 3)  # a repeated LWT (retained, redelivered) changes nothing
    assert len(fleet.changes) == 2
    assert caplog.records[-1].getMessage() == f"node {A} offline (lwt)"
    assert (fleet.metric("nodes_online"), fleet.metric("nodes_offline")) == (0, 1)
    assert fleet.metric("status_changes", reason=REASON_LWT) == 1
    fleet.message(A, T0 + 40)
    assert fleet.status(A) == STATUS_ONLINE
    assert caplog.records[-1].getMessage() == f"node {A} online (message, after 38 s offline)"
    assert (fleet.metric("nodes_online"), fleet.metric("nodes_offline")) == (1, 0)


async def test_lwt_for_a_node_never_heard_marks_it_offline(make_fleet):
    fleet = await make_fleet()
    fleet.availability(A, False, T0)
    assert fleet.status(A) == STATUS_OFFLINE
    assert fleet.check(T0 + 1000) == 0


async def test_timeout_after_silence_while_rhythm_unknown(make_fleet, caplog):
    fleet = await make_fleet({"timeout": 10, "initial_timeout": 90})
    caplog.set_level(logging.INFO, logger="hub.plugins.presence")
    fleet.message(A, T0)
    assert fleet.tracker.deadline(A) == T0 + 90
    assert fleet.check(T0 + 89.9) == 0
    assert fleet.status(A) == STATUS_ONLINE
    assert fleet.check(T0 + 95) == 1
    assert fleet.status(A) == STATUS_OFFLINE
    assert fleet.changes[-1] == {
        "node_id": A,
        "old": "online",
        "new": "offline",
        "reason": REASON_TIMEOUT,
        "ts": T0 + 95,
    }
    assert caplog.records[-1].getMessage() == f"node {A} offline (timeout after 95 s silence)"
    assert caplog.records[-1].levelno == logging.INFO
    assert fleet.check(T0 + 500) == 0  # once offline, nothing more
    assert fleet.metric("status_changes", reason=REASON_TIMEOUT) == 1


async def test_fast_publisher_caught_within_the_timeout_floor(make_fleet):
    fleet = await make_fleet({"timeout": 10})
    t = T0
    for _ in range(10):
        fleet.message(A, t)
        fleet.check(t)
        t += 2.0
    last = t - 2.0
    assert fleet.tracker.learned_interval(A) == 2.0
    assert fleet.tracker.allowed_silence(A) == 10.0  # max(timeout, 3 x 2 s)
    assert fleet.check(last + 9.9) == 0
    assert fleet.check(last + 10.0) == 1
    assert fleet.status(A) == STATUS_OFFLINE


async def test_learned_interval_stretches_the_timeout(make_fleet):
    fleet = await make_fleet({"timeout": 10, "interval_factor": 3})
    for cycle in range(6):
        fleet.message(A, T0 + 60 * cycle)
    last = T0 + 300
    assert fleet.tracker.learned_interval(A) == 60.0
    assert fleet.tracker.allowed_silence(A) == 180.0
    assert fleet.check(last + 179) == 0
    assert fleet.check(last + 181) == 1
    assert fleet.changes[-1]["reason"] == REASON_TIMEOUT


async def test_a_silence_is_judged_from_the_last_message(make_fleet):
    """Messages push the deadline on; the heap entry made at the first message must not fire early."""
    fleet = await make_fleet({"timeout": 5, "initial_timeout": 20})
    for second in range(0, 100, 4):
        fleet.message(A, T0 + second)
        assert fleet.check(T0 + second + 1) == 0
    assert fleet.status(A) == STATUS_ONLINE
    assert fleet.check(T0 + 96 + 12) == 1  # learned 4 s -> allowed max(5, 12) = 12 s


async def test_bursts_and_duplicates_are_not_intervals(make_fleet):
    """A node that sends data, status and a redelivered duplicate together is a 30 s node, not a 50 ms one."""
    fleet = await make_fleet({"timeout": 10})
    for cycle in range(10):
        start = T0 + 30 * cycle
        fleet.message(A, start)
        fleet.availability(A, True, start + 0.05)
        fleet.message(A, start + 0.05)
        fleet.message(A, start + 0.3)
    assert fleet.tracker.learned_interval(A) == pytest.approx(30.0, abs=0.01)
    assert fleet.tracker.allowed_silence(A) == pytest.approx(90.0, abs=0.1)


async def test_jittery_30s_publisher_never_flaps_and_is_caught_when_it_stops(make_fleet):
    """500 cycles of 30 s +-20 % (plus bursts), the check running every second of fake time."""
    fleet = await make_fleet({"timeout": 10, "interval_factor": 3})
    rng = random.Random(20240601)
    t = T0
    next_check = T0
    longest = 0.0
    for _ in range(500):
        fleet.message(A, t)
        if rng.random() < 0.3:
            fleet.message(A, t + rng.uniform(0.01, 0.5))  # a burst or a redelivery
        gap = rng.uniform(24.0, 36.0)
        longest = max(longest, gap)
        while next_check < t + gap:
            fleet.check(next_check)
            next_check += 1.0
        t += gap
    last = fleet.hub.registry.get(A).last_seen
    assert fleet.changes == [fleet.changes[0]]  # online once, never offline
    assert fleet.status(A) == STATUS_ONLINE
    assert 30.0 <= fleet.tracker.learned_interval(A) <= 36.0
    # It stops: caught after at least 3 x the shortest plausible interval, at most 3 x the longest + one check.
    offline_at = None
    while offline_at is None:
        next_check = max(next_check, last)
        if fleet.check(next_check):
            offline_at = next_check
        next_check += 1.0
    assert 3 * 24.0 < offline_at - last <= 3 * longest + 1.0
    assert fleet.changes[-1]["reason"] == REASON_TIMEOUT


async def test_one_outage_does_not_stretch_the_learned_interval(make_fleet):
    fleet = await make_fleet({"timeout": 10})
    t = T0
    for _ in range(10):
        fleet.message(A, t)
        t += 10.0
    fleet.check(t + 600)  # silent for 10 minutes (no LWT): timed out
    assert fleet.status(A) == STATUS_OFFLINE
    t += 600
    for _ in range(3):
        fleet.message(A, t)
        t += 10.0
    assert fleet.tracker.learned_interval(A) == 10.0
    last = t - 10.0
    assert fleet.check(last + 31) == 1  # caught as promptly as before the outage


async def test_gap_after_lwt_is_an_outage_not_an_interval(make_fleet):
    fleet = await make_fleet({"timeout": 10})
    for cycle in range(4):
        fleet.message(A, T0 + 10 * cycle)
    fleet.availability(A, False, T0 + 35)
    fleet.message(A, T0 + 3600)  # back after an hour (rebooted)
    fleet.message(A, T0 + 3610)
    state_interval = fleet.tracker.learned_interval(A)
    assert state_interval == 10.0


async def test_a_real_change_of_rhythm_is_learned_after_a_few_gaps(make_fleet):
    """From 10 s to 60 s: at most a couple of timeouts while relearning, then stable."""
    fleet = await make_fleet({"timeout": 10})
    t = T0
    for _ in range(10):
        fleet.message(A, t)
        t += 10.0
    timeouts_per_cycle = []
    for _ in range(12):
        before = len(fleet.changes)
        for second in range(1, 60):
            fleet.check(t + second - 60)
        fleet.message(A, t + 50)
        t += 60.0
        timeouts_per_cycle.append(sum(c["reason"] == REASON_TIMEOUT for c in fleet.changes[before:]))
    assert sum(timeouts_per_cycle) <= 2
    assert timeouts_per_cycle[-6:] == [0] * 6
    assert fleet.tracker.learned_interval(A) == 60.0


async def test_nodes_are_independent(make_fleet):
    fleet = await make_fleet({"timeout": 10})
    for cycle in range(5):
        fleet.message(A, T0 + 5 * cycle)
        fleet.message(B, T0 + 50 * cycle)
    # A (5 s rhythm, last at +20) is due at +35; B (50 s, last at +200) at +350.
    assert fleet.check(T0 + 201) == 1
    assert (fleet.status(A), fleet.status(B)) == (STATUS_OFFLINE, STATUS_ONLINE)
    assert fleet.check(T0 + 351) == 1
    assert fleet.status(B) == STATUS_OFFLINE
    assert (fleet.metric("nodes_online"), fleet.metric("nodes_offline")) == (0, 2)


async def test_removed_node_is_forgotten(make_fleet):
    fleet = await make_fleet()
    fleet.message(A, T0)
    fleet.message(B, T0)
    assert fleet.metric("nodes_online") == 2
    assert fleet.hub.registry.remove(A)
    assert fleet.metric("nodes_online") == 1
    assert fleet.check(T0 + 1000) == 1  # only B is left to time out
    fleet.message(A, T0 + 1001)  # re-registered: tracked afresh
    assert fleet.status(A) == STATUS_ONLINE
    assert fleet.check(T0 + 1001 + 91) == 1


async def test_due_names_only_the_nodes_a_check_would_mark_offline(make_fleet):
    """What the presence leader reads from the database before a check: the silent nodes, not the fleet."""
    fleet = await make_fleet({"timeout": 5, "initial_timeout": 20})
    fleet.message(A, T0)
    fleet.message(B, T0)
    assert fleet.tracker.due(T0 + 19) == []
    fleet.message(B, T0 + 15)  # B spoke again: its queued entry is now early, not silence
    assert fleet.tracker.due(T0 + 21) == [A]
    assert fleet.check(T0 + 21) == 1
    assert fleet.tracker.due(T0 + 21) == []  # A is offline now, B still within its allowed silence
    assert fleet.tracker.due(T0 + 59) == []  # B's 15 s interval: allowed 3 x 15 = 45 s from T0 + 15
    assert fleet.tracker.due(T0 + 61) == [B]
