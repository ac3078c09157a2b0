"""Where the hub's ingest time goes: a py-spy profile summed into the components of the hot path.

Record the hub phase of the ingest benchmark (py-spy attached from the publisher's start to the
last commit, sampling only the thread holding the GIL: the hub's event loop)::

    python benchmarks/ingest.py --skip-baseline --profile ingest.raw \\
        --db postgresql+asyncpg://… --nodes 1000 --messages 300000
    python benchmarks/profile_shares.py ingest.raw --messages 300000

Each sample is charged to one component: garbage collection if a collector frame is on the stack,
else the innermost frame that belongs to a known component (so ``orjson.loads`` called by the
esp32_node handler counts as orjson, the handler's own lines as the handler).  Prints a Markdown table
of shares of the hub's samples, plus samples per message when ``--messages`` is given (a machine-
independent measure of work, as long as the sampling rate is the same).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

GC_FRAMES = re.compile(
    r"^(gc_collect_main|gc_collect_with_callback|gc_collect_generations|collect|_PyObject_GC_Link)\b"
)
"""Native frames of CPython's cyclic garbage collector (``--native``)."""

COMPONENTS: list[tuple[str, re.Pattern[str]]] = [
    ("orjson", re.compile(r"orjson|\(json\.py")),
    ("asyncpg / COPY", re.compile(r"asyncpg/|sink_postgres\.py|sink_sqlite\.py|aiosqlite|sqlalchemy/")),
    ("rollup deltas", re.compile(r"rollup_deltas\.py")),
    ("storage batch/plan", re.compile(r"hub/plugins/storage/")),
    ("esp32_node handler", re.compile(r"hub_esp32_node/")),
    ("presence", re.compile(r"hub/plugins/presence/")),
    ("registry", re.compile(r"hub/core/registry\.py")),
    ("event bus", re.compile(r"hub/core/events\.py")),
    ("router", re.compile(r"hub/core/messages\.py")),
    ("transport", re.compile(r"hub/plugins/(mqtt|rabbitmq)/")),
    ("gmqtt parsing", re.compile(r"gmqtt/")),
    ("AMQP (aiormq, pamqp, aio-pika)", re.compile(r"aiormq/|pamqp/|aio_pika/")),
    ("metrics", re.compile(r"hub/core/metrics\.py")),
    ("asyncio loop, sockets", re.compile(r"asyncio/|selectors\.py|socket")),
]


def charge(frames: list[str]) -> str:
    """The component one sample (frames root first, as py-spy's raw format has them) is charged to."""
    if any(GC_FRAMES.match(frame) for frame in frames):
        return "garbage collection"
    for frame in reversed(frames):
        for name, pattern in COMPONENTS:
            if pattern.search(frame):
                return name
    return "other"


def shares(path: Path) -> tuple[Counter[str], int]:
    """Samples per component in a py-spy raw (collapsed stacks) file, and the total."""
    counts: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        counts[charge(stack.split(";"))] += int(number)
    return counts, sum(counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy record -f raw output")
    parser.add_argument("--messages", type=int, help="messages the profiled run ingested")
    args = parser.parse_args()
    counts, total = shares(args.profile)
    print("| component | share | samples |")
    print("| --- | --- | --- |")
    for name, samples in counts.most_common():
        print(f"| {name} | {100 * samples / total:.0f}% | {samples} |")
    line = f"total {total} samples"
    if args.messages:
        line += f", {1e3 * total / args.messages:.2f} samples per 1,000 messages"
    print(line)


if __name__ == "__main__":
    main()
