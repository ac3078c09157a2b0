"""A clock tests move by hand, so time-driven behaviour (presence, token expiry, retention) is tested without sleeping."""

from __future__ import annotations

DEFAULT_START = 1_700_000_000.0
"""2023-11-14T22:13:20Z: a fixed, realistic epoch, so timestamps in assertions are stable."""


class FakeClock:
    """Pass it as ``hub_factory(clock=…)``: the hub, its bus, its registry and the plugins all read it.

    It is two clocks, as a real machine has: calling it gives the wall clock (``now``), and
    :meth:`monotonic` the clock durations are measured on (the hub's ``monotonic``).  Moving
    ``now`` (or :meth:`advance`) moves both; :meth:`jump` moves only the wall clock, as NTP or an
    operator setting the date does.
    """

    def __init__(self, now: float = DEFAULT_START) -> None:
        self.now = now
        self.skew = 0.0
        """How far the wall clock has been set away from the monotonic one by :meth:`jump`."""

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        """The monotonic clock: ``now`` minus every :meth:`jump`."""
        return self.now - self.skew

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds

    def jump(self, seconds: float) -> None:
        """Set the wall clock ``seconds`` forward (negative: back) while no time passes."""
        self.now += seconds
        self.skew += seconds
