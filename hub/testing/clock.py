"""A clock tests move by hand, so time-driven behaviour (presence, token expiry, retention) is tested without sleeping."""

from __future__ import annotations

DEFAULT_START = 1_700_000_000.0
"""2023-11-14T22:13:20Z: a fixed, realistic epoch, so timestamps in assertions are stable."""


class FakeClock:
    """Pass it as ``hub_factory(clock=…)``: the hub, its bus, its registry and the plugins all read it."""

    def __init__(self, now: float = DEFAULT_START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds
