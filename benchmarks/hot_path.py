"""The hub's whole in-process ingest path per message, no broker and no database: for comparing fleet sizes.

    python benchmarks/hot_path.py --nodes 10000 [--messages 100000] [--without presence|storage|rollups]

Each message goes where a transport would send it (``MessageRouter.dispatch``) and on through the esp32_node
handler, the registry, presence and the storage writer, whose batches a sink in memory takes: node ids,
``telemetry_records`` and the rollup accumulator, what ``sink_postgres`` does before its ``COPY``.  The
payloads are the load generator's (``loadgen.payload``), made as the messages are sent, like bytes just read
from a socket; the cost of making them is measured apart and subtracted.  The fleet is registered and its
first batches written before the measurement, as in a running hub.

The ingest benchmark's 10,000-node figures spread widely from run to run; this one isolates the hub's share.
Under cachegrind it counts the misses of a cache the size of this machine's L2 (the working set of 100 nodes
fits in it, that of 10,000 does not), which no other load on the machine changes:

    valgrind --tool=cachegrind --cache-sim=yes --LL=1048576,16,64 python benchmarks/hot_path.py --nodes 10000

Run it with ``--messages 0`` too: the difference is the measured messages' share.  ``--without`` leaves a
component out (``presence``: the built-in plugin; ``storage``: the writer; ``rollups``: the sink's rollup
accumulation), to see what it adds.

``--rate R`` makes such counts repeatable: the hub's clock is then a fake one that moves 1/R s a message (as
if the fleet sent R messages a second) and batches are written by size only.  With the wall clock, what
depends on time (presence's bursts, which nodes' ``last_seen`` is due, how many batches the writer makes)
changes with the machine's speed, and under valgrind, a hundred times slower, every message looks like its
node's first in a second and every ``last_seen`` is due.  With ``--rate``, both phases (the fleet's first
messages, the measured ones) end with the writer told to write what it holds, and the event loop's timers follow
the fake clock too (:class:`FakeTimeLoop`): the hub's periodic tasks run at the same messages in every run.
Prints one JSON line: ``us_per_msg`` (CPU time of this process per message, payload making subtracted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from functools import partial
from typing import Any

import hub_esp32_node.plugin
from loadgen import node_macs, payload

from hub import Hub
from hub.core.hub import freeze_startup_heap
from hub.plugins.storage.batch import WritePlan, WriteResult, telemetry_records
from hub.plugins.storage.rollup_deltas import RollupAccumulator
from hub.plugins.storage.writer import BatchWriter
from hub.testing import FakeClock, make_hub

BATCH_SIZE = 10_000
"""Readings a batch: what the ingest benchmark's hub writes at 10,000 nodes."""
FIXED_START = 1_700_000_000.0
"""Where ``--rate``'s clock starts: the same second of a minute every run, so the same messages open new minutes
(the rollup accumulator's new slots) in every run."""
WALL_STEP = 1e-4
"""Seconds between the messages' own timestamps without ``--rate`` (the hub's clock is the wall clock then)."""
LONG_INTERVAL = 3600.0
"""The writer's flush interval with ``--rate``: batches are written when full (and when a phase ends)."""
YIELD_EVERY = 64
"""Messages between event-loop turns (the writer's task runs in them), as the load generator's bursts arrive."""


class MemorySink:
    """The PostgreSQL sink's work in memory: ids for new nodes, the telemetry records, the rollup accumulation."""

    def __init__(self, rollups: bool) -> None:
        self.accumulator = RollupAccumulator() if rollups else None
        self.stored = 0
        self._next_id = 1

    async def write(self, plan: WritePlan, ids: dict[str, int]) -> WriteResult:
        new_ids: dict[str, int] = {}
        for row in plan.nodes:
            if row[0] not in ids:
                new_ids[row[0]] = self._next_id
                self._next_id += 1
        records = telemetry_records(plan.rows, ids, new_ids, epoch=1)
        if self.accumulator is not None:
            self.accumulator.add(records.rows, records.documents)
        self.stored += len(records.rows)
        return WriteResult(new_ids, len(records.rows), 0, records.orphans)

    def seal_after(self) -> float | None:
        return None

    async def seal(self) -> None:
        return None


def _hub(nodes: int, without: set[str], clock: FakeClock | None) -> Hub:
    limits = {"max_nodes": max(20_000, nodes), "new_nodes_per_minute": max(1_000, nodes)}
    builtins = () if "presence" in without else ("hub.plugins.presence",)
    config = {"hub": {"data_dir": "/tmp/hub-hot-path", "limits": limits}}
    return make_hub(config, builtins=builtins, plugins=[(hub_esp32_node.plugin, "esp32_node")], clock=clock)


async def _send(
    hub: Hub | None, macs: list[str], start: int, count: int, now: float, step: float, clock: FakeClock | None = None
) -> None:
    """Messages ``start`` .. ``start + count`` round-robin over the fleet (only made, not sent, without a hub),
    message ``seq`` timed ``now + seq * step``; a fake ``clock`` (``--rate``) is moved to that time before it is sent.
    """
    topics = [f"devices/{mac}/data" for mac in macs]
    dispatch = hub.messages.dispatch if hub is not None else None
    nodes = len(macs)
    for seq in range(start, start + count):
        index = seq % nodes
        at = now + seq * step
        data = payload(macs[index], seq, at)
        if clock is not None:
            clock.now = at
        if dispatch is not None:
            dispatch(topics[index], data, False)
        if seq % YIELD_EVERY == 0:
            await asyncio.sleep(0)


async def _committed(hub: Hub, writer: BatchWriter, by_size: bool) -> None:
    """Wait until everything sent is committed; with ``--rate``, have the writer write its last batch now."""
    if by_size:
        writer._interval = 0.0  # noqa: SLF001 - the benchmark's own writer: no size or age reached, so flush it
        writer._kick.set()  # noqa: SLF001
    await hub.durability.wait_committed()
    if by_size:
        writer._interval = LONG_INTERVAL  # noqa: SLF001


class FakeTimeLoop(asyncio.SelectorEventLoop):
    """``--rate``'s event loop: its timers follow the fake clock until :meth:`release`.

    The hub's periodic tasks (presence's check, the loop-lag ticker, the heap's refreeze) sleep on the loop's
    clock.  On the wall clock they ran as often as the machine's speed let them within a phase, a hundred times
    more often under valgrind, so two counts of the same code differed by what those tasks did.  On the fake
    clock they run at the same messages in every run, as often as they would at ``--rate``.  Once the
    measurement is over, :meth:`release` lets the loop's time go on at the wall clock's pace from where the fake
    one stood (never backwards), so the stop's own timeouts work.
    """

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self._released: tuple[float, float] | None = None

    def time(self) -> float:
        if self._released is None:
            return self.clock.monotonic()
        fake, wall = self._released
        return fake + time.monotonic() - wall

    def release(self) -> None:
        """From now on the loop's time moves with the wall clock."""
        if self._released is None:
            self._released = (self.clock.monotonic(), time.monotonic())


async def run(nodes: int, messages: int, without: set[str], rate: float | None = None) -> dict[str, Any]:
    """One measurement; with ``rate``, on a :class:`FakeTimeLoop` (see :func:`measure`)."""
    loop = asyncio.get_running_loop()
    clock = loop.clock if isinstance(loop, FakeTimeLoop) else None
    assert (clock is None) == (rate is None), "--rate runs on a FakeTimeLoop: use measure()"
    step = WALL_STEP if rate is None else 1.0 / rate
    hub = _hub(nodes, without, clock)
    await hub.async_start()
    sink = MemorySink(rollups="rollups" not in without)
    writer = BatchWriter(
        hub,
        sink,
        ids={},
        persisted_seen={},
        batch_size=BATCH_SIZE,
        flush_interval=0.5 if clock is None else LONG_INTERVAL,  # with --rate: written by size only
        max_pending=10 * BATCH_SIZE,
    )
    if "storage" not in without:
        writer.start()
    try:
        macs = node_macs(nodes)
        now = time.time() if clock is None else clock.now
        await _send(hub, macs, 0, 2 * nodes, now, step, clock)  # registers the fleet, then its second message: known
        await _committed(hub, writer, clock is not None)
        freeze_startup_heap()
        started = time.process_time()
        await _send(None, macs, 2 * nodes, messages, now, step)
        making = time.process_time() - started
        started = time.process_time()
        await _send(hub, macs, 2 * nodes, messages, now, step, clock)
        await _committed(hub, writer, clock is not None)
        spent = time.process_time() - started
        if isinstance(loop, FakeTimeLoop):
            loop.release()
        assert hub.messages.handler_errors == 0
        assert not hub.metrics.rejection_examples, f"messages were rejected: {hub.metrics.rejection_examples}"
        if "storage" not in without:
            assert sink.stored == messages + 2 * nodes, f"stored {sink.stored}"
        return {
            "benchmark": "hot_path",
            "nodes": nodes,
            "messages": messages,
            "without": sorted(without),
            "us_per_msg": round(1e6 * (spent - making) / messages, 2) if messages else None,
            "payload_us_per_msg": round(1e6 * making / messages, 2) if messages else None,
        }
    finally:
        if "storage" not in without:
            await writer.close(timeout=30)
        await hub.async_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--without", action="append", choices=("presence", "storage", "rollups"), default=[])
    parser.add_argument("--rate", type=float, help="a fake clock moving 1/RATE s a message; batches by size only")
    args = parser.parse_args()
    print(json.dumps(measure(args.nodes, args.messages, set(args.without), args.rate)))


def measure(nodes: int, messages: int, without: set[str], rate: float | None = None) -> dict[str, Any]:
    """:func:`run` on an event loop of its own: with ``rate``, one whose time is the fake clock's."""
    factory = None if rate is None else partial(FakeTimeLoop, FakeClock(FIXED_START))
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run(nodes, messages, without, rate))


if __name__ == "__main__":
    main()
