"""Presence cost at fleet scale: the per-message listener and the per-second silence check.

    python benchmarks/presence.py [--nodes 10000] [--messages 500000]

Prints one JSON line:

* ``listener_us_per_msg`` — what presence adds to ``registry.report_states`` per message (the same
  load run with and without presence listening, difference divided by messages; in both runs a no-op
  listener stands in for storage, so the event object is built either way);
* ``check_us_per_tick`` — one ``check(now)`` with every node online and publishing every 30 s
  (what the background task does every second), against ``scan_us_per_tick``, a naive scan of every
  node's deadline, which is what the heap avoids;
* ``online_after_ticks`` — nodes still online after those 300 ticks (must equal ``nodes``: no flaps);
* ``timed_out`` — how many nodes the final check marked offline once they all went silent (must equal
  ``nodes``), and ``timeout_check_ms``, how long that one mass check took.
"""

from __future__ import annotations

import argparse
import json
import time

from hub import EventBus, Metrics, NodeRegistry
from hub.plugins.presence import CONFIG_SCHEMA, PresenceTracker
from hub.testing import FakeClock


def build(nodes: int, with_presence: bool) -> tuple[NodeRegistry, list, PresenceTracker | None, FakeClock]:
    clock = FakeClock()
    bus = EventBus(clock=clock)
    registry = NodeRegistry(bus, clock=clock)
    tracker = None
    # Storage always listens to state_reported, so the event object is built anyway; a no-op listener
    # stands in for it so the difference measured is presence's own work.
    bus.listen("state_reported", lambda event: None)
    if with_presence:
        tracker = PresenceTracker(registry, bus, Metrics(), clock, monotonic=clock.monotonic, **CONFIG_SCHEMA({}))
        tracker.attach()
        tracker.start(clock.now)
    fleet = []
    for i in range(nodes):
        node = registry.get_or_register(
            ":".join(f"{b:02x}" for b in i.to_bytes(6, "big")), limited=False
        )  # an existing fleet, not new nodes arriving
        registry.ensure_entity(node, "temperature")
        fleet.append(node)
    return registry, fleet, tracker, clock


class Traffic:
    """Every node publishes once every ``period`` s of fake time, round-robin, evenly staggered."""

    def __init__(self, registry: NodeRegistry, fleet: list, clock: FakeClock, period: float) -> None:
        self.report = registry.report_states
        self.fleet = fleet
        self.clock = clock
        self.step = period / len(fleet)
        self.cursor = 0

    def drive(self, messages: int) -> float:
        """Send ``messages`` messages; returns the wall seconds it took."""
        fleet, clock, step, report, n = self.fleet, self.clock, self.step, self.report, len(self.fleet)
        states = {"temperature": 21.5}
        cursor = self.cursor
        started = time.perf_counter()
        for _ in range(messages):
            clock.now += step
            report(fleet[cursor], states, clock.now)
            cursor = cursor + 1 if cursor + 1 < n else 0
        elapsed = time.perf_counter() - started
        self.cursor = cursor
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=500_000)
    args = parser.parse_args()
    period = 30.0

    registry, fleet, _, clock = build(args.nodes, with_presence=False)
    traffic = Traffic(registry, fleet, clock, period)
    bare = min(traffic.drive(args.messages) for _ in range(3))

    registry, fleet, tracker, clock = build(args.nodes, with_presence=True)
    assert tracker is not None
    traffic = Traffic(registry, fleet, clock, period)
    traffic.drive(args.nodes * 4)  # warm up: every node online, its rhythm learned
    with_presence = min(traffic.drive(args.messages) for _ in range(3))

    # One check per second of fleet time, interleaved with that second's traffic.
    per_second = round(args.nodes / period)
    ticks, check_time = 300, 0.0
    for _ in range(ticks):
        traffic.drive(per_second)
        started = time.perf_counter()
        tracker.check(clock.now)
        check_time += time.perf_counter() - started
    still_online = sum(node.status == "online" for node in fleet)

    # The alternative: every second, work out every node's deadline and compare.
    deadline = tracker.deadline
    started = time.perf_counter()
    for _ in range(10):
        now = clock.now
        _due = [node for node in fleet if (d := deadline(node.node_id)) is not None and d <= now]
    scan_time = (time.perf_counter() - started) / 10

    clock.now += 10 * period
    started = time.perf_counter()
    timed_out = tracker.check(clock.now)
    mass = time.perf_counter() - started

    print(
        json.dumps(
            {
                "nodes": args.nodes,
                "messages": args.messages,
                "bare_us_per_msg": round(bare / args.messages * 1e6, 3),
                "listener_us_per_msg": round((with_presence - bare) / args.messages * 1e6, 3),
                "check_us_per_tick": round(check_time / ticks * 1e6, 1),
                "scan_us_per_tick": round(scan_time * 1e6, 1),
                "online_after_ticks": still_online,
                "timed_out": timed_out,
                "timeout_check_ms": round(mass * 1e3, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
