"""Rate-limited logging, so a flood of bad input costs one log line per reason, not one per message."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLogger:
    """Logs at most one record per key every ``interval`` seconds and says how many it held back.

    A broken node that publishes garbage 100 times a second must not turn the
    hub's log into the bottleneck of the ingest path; the first occurrence is
    logged at once, later ones are counted and summarised with the next record
    that gets through.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._next_allowed: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``msg % args`` under ``key`` unless that key logged recently; True when it was logged."""
        now = self._clock()
        if now < self._next_allowed.get(key, 0.0):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._next_allowed[key] = now + self._interval
        held = self._suppressed.pop(key, 0)
        if held:
            msg = f"{msg} (%d similar suppressed)"
            args = (*args, held)
        self._logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """Shorthand for :meth:`log` at WARNING."""
        return self.log(logging.WARNING, key, msg, *args)

    def error(self, key: str, msg: str, *args: object) -> bool:
        """Shorthand for :meth:`log` at ERROR."""
        return self.log(logging.ERROR, key, msg, *args)
