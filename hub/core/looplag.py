"""Event-loop lag: how long the hub's one event loop was held by something before it could run a timer.

Everything the hub does (ingest, HTTP, WebSocket, presence) shares one event loop, so
one slow callback delays all of them.  :class:`LoopLag` measures that from the inside:
a task sleeps :data:`INTERVAL` seconds and records how much later than asked it woke
up.  That delay is the longest turn some other callback held the loop (plus a little
scheduling noise), which is what an operator and the fault suite (``tests/chaos/``)
need to know.  It reports:

* ``hub_loop_lag_seconds`` (histogram): every sample, so a Prometheus query can ask
  how often the loop was held longer than 100 ms;
* ``hub_loop_lag_max_seconds`` (gauge): the longest lag since the hub started — the
  figure ``docs/reliability.md`` quotes for each fault ("max loop stall");
* ``hub_loop_lag_last_seconds`` (gauge): the latest sample;
* ``hub_loop_busy_max_seconds`` (gauge): the most CPU time the loop's thread used within one
  sample.  On a machine shared with other work the wall-clock lag also counts the time the
  operating system ran someone else (or another thread held the GIL); the CPU time counts only
  what the hub itself did, so the pair tells "the hub held its loop" from "the machine was busy".

A lag longer than :data:`WARN_AFTER` is logged at WARNING (rate-limited) so a stall shows up
in the log too.  The cost is one timer wake-up every 50 ms.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .metrics import Metrics
from .ratelimit import RateLimitedLogger

_LOGGER = logging.getLogger(__name__)

INTERVAL = 0.05
"""Seconds between samples: short enough to see a 100 ms stall, long enough to cost nothing."""

WARN_AFTER = 0.5
"""A lag longer than this is logged (rate-limited): someone held the loop for half a second."""

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LoopLag:
    """Samples the running loop's lag into the hub's metrics (see the module docstring)."""

    def __init__(self, metrics: Metrics, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.max_lag = 0.0
        self.max_busy = 0.0
        self._histogram = metrics.histogram(
            "loop_lag_seconds", "How late the event loop ran a timer (time some callback held it)", buckets=BUCKETS
        )
        self._max = metrics.gauge("loop_lag_max_seconds", "Longest event-loop lag since the hub started")
        self._last = metrics.gauge("loop_lag_last_seconds", "The latest event-loop lag sample")
        self._busy = metrics.gauge(
            "loop_busy_max_seconds", "Most CPU time the event loop's thread used within one lag sample"
        )
        self._log = RateLimitedLogger(_LOGGER, interval=60.0)

    def record(self, lag: float, busy: float = 0.0) -> None:
        """Record one sample: seconds the loop was late, and CPU seconds its thread used meanwhile."""
        lag = max(lag, 0.0)
        if busy > self.max_busy:
            self.max_busy = busy
            self._busy.set(busy)
        self._histogram.observe(lag)
        self._last.set(lag)
        if lag > self.max_lag:
            self.max_lag = lag
            self._max.set(lag)
        if lag > WARN_AFTER:
            self._log.log(
                logging.WARNING, "stall", "The event loop was held for %.2f s (%.2f s of it on CPU)", lag, busy
            )

    async def run(self) -> None:
        """Sample until cancelled (the hub runs it as a background task)."""
        loop = asyncio.get_running_loop()
        while True:
            before, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(self.interval)
            self.record(loop.time() - before - self.interval, time.thread_time() - cpu)
