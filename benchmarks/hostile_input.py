"""How long one hostile MQTT message holds the event loop: the fuzz corpus of tests/fuzz through the real ingest.

Draws ``--messages`` (topic, payload) pairs from the same Hypothesis strategies as
``tests/fuzz/test_fuzz_ingest.py`` (derandomized: the same corpus every run), then
dispatches them into a hub with storage (SQLite), esp32_node and esphome exactly
as the MQTT transport does, one ``hub.messages.dispatch`` each.  Dispatch runs
inline on the event loop, so the time one call takes is the loop stall that
message causes (on a shared machine the wall time includes being scheduled out, so the CPU time the
dispatching thread spent is printed too).  Prints the longest, the 99th percentile, the mean, messages per
second and the rejections by reason.

    .venv/bin/python benchmarks/hostile_input.py --messages 20000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))

import hub_esp32_node.plugin  # noqa: E402
import hub_esphome.plugin  # noqa: E402
from fuzzing import MESSAGES, rejections  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from hub.testing import make_hub  # noqa: E402


def corpus(count: int) -> list[tuple[str, bytes]]:
    """``count`` hostile messages, the same every run."""
    drawn: list[tuple[str, bytes]] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(messages=MESSAGES)
    def draw(messages: list[tuple[str, bytes]]) -> None:
        drawn.extend(messages)

    draw()
    return drawn[:count]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    messages = corpus(args.messages // 6 + 1)
    while len(messages) < args.messages:
        messages += messages[: args.messages - len(messages)]
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "esphome"
        empty.mkdir()
        hub = make_hub(
            {
                "hub": {"data_dir": folder, "limits": {"max_nodes": 1000, "new_nodes_per_minute": 100_000}},
                "storage": {"db_url": f"sqlite:///{folder}/hub.db"},
                "esphome": {"firmware_dir": str(empty)},
            },
            builtins=("hub.plugins.storage",),
            plugins=[(hub_esp32_node.plugin, "esp32_node"), (hub_esphome.plugin, "esphome")],
        )
        await hub.async_start()
        try:
            durations = []
            slowest: list[tuple[float, str, int]] = []
            dispatch = hub.messages.dispatch
            cpu: list[float] = []
            for topic, payload in messages:
                start, start_cpu = time.perf_counter(), time.thread_time()
                dispatch(topic, payload, False)
                took = time.perf_counter() - start
                cpu.append(time.thread_time() - start_cpu)
                durations.append(took)
                if cpu[-1] > 0.005:
                    slowest.append((cpu[-1], topic[:60], len(payload)))
                if len(durations) % 500 == 0:
                    await asyncio.sleep(0)  # let storage flush, as a broker's in-flight window would
            await hub.durability.wait_committed()
        finally:
            await hub.async_stop()
    durations.sort()
    cpu.sort()
    print(f"messages: {len(durations)} ({sum(len(p) for _, p in messages) / len(messages):.0f} bytes on average)")
    print(f"longest: {durations[-1] * 1000:.2f} ms   p99: {durations[int(len(durations) * 0.99)] * 1000:.3f} ms")
    print(f"longest in CPU time (the hub's own work, not the scheduler's): {cpu[-1] * 1000:.2f} ms")
    print(f"mean: {statistics.fmean(durations) * 1e6:.1f} us   rate: {len(durations) / sum(durations):,.0f} messages/s")
    for took, topic, size in sorted(slowest, reverse=True)[:5]:
        print(f"  {took * 1000:.1f} ms: {topic!r}, {size} bytes")
    print(f"handler errors: {hub.messages.handler_errors}   rejected by reason: {rejections(hub)}")


if __name__ == "__main__":
    asyncio.run(main())
