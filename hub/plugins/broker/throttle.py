"""Failed-login throttle: a token bucket per key (a client address, a username), bounded in memory."""

from __future__ import annotations

import time
from collections.abc import Callable


class FailureThrottle:
    """Allows ``burst`` failures per key, then one more every ``60 / per_minute`` seconds.

    A key is *blocked* while its bucket holds less than one failure; the
    broker then refuses a CONNECT without checking its password at all, so
    a flood costs a dictionary lookup per attempt.  Buckets that have refilled
    are forgotten, and at most ``max_keys`` are kept (the least recently
    failed go first), so a flood from many addresses cannot grow memory.
    """

    def __init__(
        self, burst: int, per_minute: float, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = float(burst)
        self._rate = per_minute / 60.0
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """key → (failures still allowed, when that was computed); insertion order = least recently failed first."""

    def _level(self, key: str, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return self._burst
        allowance, since = entry
        return min(self._burst, allowance + (now - since) * self._rate)

    def blocked(self, key: str) -> bool:
        """True while ``key`` has used up its failures."""
        if key not in self._buckets:
            return False
        now = self._clock()
        level = self._level(key, now)
        if level >= self._burst:
            del self._buckets[key]
            return False
        return level < 1.0

    def failed(self, key: str) -> None:
        """Count one failure against ``key``."""
        now = self._clock()
        level = max(self._level(key, now) - 1.0, 0.0)
        self._buckets.pop(key, None)
        if len(self._buckets) >= self._max_keys:
            del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = (level, now)

    def __len__(self) -> int:
        return len(self._buckets)
