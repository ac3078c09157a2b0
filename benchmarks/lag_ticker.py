"""A millisecond loop-lag ticker for benchmarks that run a hub in their own process (``fleet_bounds.py``).

The hub's own :class:`hub.core.looplag.LoopLag` samples every 50 ms for an operator's metrics; a benchmark
looking for which phase held the loop, and for how long, needs a finer clock and a reset between phases.
So this task wakes every millisecond and records how late it woke (``max_lag``, wall clock: on a shared
machine it includes time the process was not scheduled), the most CPU time this thread spent between two
wake-ups (``max_busy``: the hub itself holding the loop, work or garbage collection), and the longest
garbage collection (``max_gc``), each since the last :meth:`LagTicker.reset`.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any


class LagTicker:
    """Wakes every millisecond; since the last :meth:`reset`, ``max_lag`` is the latest it woke (ms, wall
    clock) and ``max_busy`` the most CPU time this thread spent between two wake-ups (ms)."""

    def __init__(self) -> None:
        self.max_lag = 0.0
        self.max_busy = 0.0
        self.max_gc = 0.0
        """The longest garbage collection (ms of CPU): part of any busy figure it falls into."""
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            self.max_gc = max(self.max_gc, (time.thread_time() - self._gc_started) * 1000)

    async def _run(self) -> None:
        while True:
            before, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            late = (time.perf_counter() - before - 0.001) * 1000
            self.max_lag = max(self.max_lag, late)
            self.max_busy = max(self.max_busy, (time.thread_time() - cpu) * 1000)

    def reset(self) -> None:
        self.max_lag = 0.0
        self.max_busy = 0.0
        self.max_gc = 0.0

    def figures(self, out: dict[str, Any], name: str) -> None:
        """``lag_<name>_ms`` and ``busy_<name>_ms`` into ``out``, then reset."""
        out[f"lag_{name}_ms"] = round(self.max_lag, 1)
        out[f"busy_{name}_ms"] = round(self.max_busy, 1)
        out[f"gc_{name}_ms"] = round(self.max_gc, 1)
        self.reset()

    async def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
