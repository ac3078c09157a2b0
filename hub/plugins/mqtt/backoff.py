"""Exponential backoff with jitter for reconnecting, so a fleet of hubs (or one hub's retries) never hammers a broker."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``minimum`` up to ``maximum``, each drawn from [delay/2, delay].

    Half of each delay is fixed so retries are never immediate, the other half
    random so clients cut off together do not come back together.
    """

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling."""
        ceiling = min(self.maximum, self.minimum * 2 ** min(self._attempt, 32))
        self._attempt += 1
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def reset(self) -> None:
        """A connection succeeded: the next failure starts from ``minimum`` again."""
        self._attempt = 0
