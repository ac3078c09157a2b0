"""PostgreSQL upkeep off the ingest path: partitions made ahead and the rollup fold, in one background task.

Runs in processes whose role runs maintenance (``hub run``, workers), never in
one-off commands.  Partitions are made at setup, before the writer starts (so
today's rows do not land in the default partition), then checked hourly;
the fold runs every ``rollup_interval`` seconds, after recovering the rollup
deltas of any epoch a writer abandoned (:mod:`.rollup_epochs`).  Several processes may do
this at once: partitions are made under an advisory lock and only one fold
runs at a time (:mod:`.partitions`, :mod:`.rollups`).  A failure is logged
(rate-limited) and retried at the next turn; ingest never waits for any of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from hub import Metrics, RateLimitedLogger

from .partitions import ensure_partitions
from .rollup_epochs import abandoned_after, recover_abandoned
from .rollups import fold

_LOGGER = logging.getLogger(__name__)

PARTITION_CHECK_INTERVAL = 3600.0
"""Seconds between two checks that the partitions ahead exist (each check is a few catalogue reads)."""


class Maintenance:
    """See the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        days_ahead: int,
        fold_interval: float,
        clock: Callable[[], float],
        metrics: Metrics,
    ) -> None:
        self._engine = engine
        self._days_ahead = days_ahead
        self._fold_interval = fold_interval
        self._clock = clock
        self._abandoned_after = abandoned_after(fold_interval)
        self._folds = metrics.counter("rollup_folds", "Rollup folds that ran (PostgreSQL)")
        self._recovered = metrics.counter(
            "rollup_epochs_recovered", "Rollup epochs a writer abandoned, counted from the stored rows (PostgreSQL)"
        )
        self._fold_seconds = metrics.counter("rollup_fold_seconds", "Seconds spent folding telemetry into rollups")
        self._made = metrics.counter("partitions_made", "Time partitions made ahead (PostgreSQL)")
        self._log = RateLimitedLogger(_LOGGER, interval=300)

    async def prepare_partitions(self) -> list[str]:
        """Make the partitions from today to ``days_ahead`` days on (idempotent)."""
        made = await ensure_partitions(self._engine, self._clock(), self._days_ahead)
        self._made.inc(len(made))
        return made

    async def run(self) -> None:
        """Fold every ``fold_interval`` seconds and check partitions hourly, forever (cancelled at shutdown)."""
        last_check = time.monotonic()
        while True:
            await asyncio.sleep(self._fold_interval)
            began = time.monotonic()
            try:
                self._recovered.inc(await recover_abandoned(self._engine, self._abandoned_after))
                await fold(self._engine)
            except Exception as err:  # noqa: BLE001 - the database hiccuped: the deltas wait for the next fold
                self._log.error("fold", "Rollup fold failed, retrying in %.0f s: %s", self._fold_interval, err)
            else:
                self._folds.inc()
            self._fold_seconds.inc(time.monotonic() - began)
            if time.monotonic() - last_check >= PARTITION_CHECK_INTERVAL:
                last_check = time.monotonic()
                try:
                    await self.prepare_partitions()
                except Exception as err:  # noqa: BLE001 - retried at the next check; rows go to the default meanwhile
                    self._log.error("partitions", "Making partitions ahead failed: %s", err)
