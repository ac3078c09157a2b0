"""Throttling and banning of failed sign-ins, per client address.

Every failed secret check on a sign-in endpoint (password, refresh token,
onboarding token) counts against the address it came from.  After the n-th
recent failure the next attempt must wait 2**(n-1) seconds (at most 30); an
early attempt gets 429 without its password even being checked, so guessing
costs the attacker time and the hub no argon2 work.  At ``threshold`` failures
within the window the address is banned from the whole API for ``ban_time``.
A success clears the address's record.  An address may have one password
check in flight at a time, so a burst of parallel guesses cannot slip past the
delay before the first failure is counted.

Bearer tokens on ordinary requests do not count: they are 256-bit random, and
counting them would ban a dashboard whose token merely expired.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hub import Metrics

from ..errors import Banned, TooManyRequests, retry_after

FAILURE_WINDOW = 3600.0
"""Failures older than this are forgotten."""
MAX_DELAY = 30.0
MAX_TRACKED = 10_000
"""Addresses remembered at most; beyond that, records with nothing pending are pruned."""


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    banned_until: float = 0.0


class LoginGuard:
    """See the module docstring."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float], *, threshold: int, ban_time: float) -> None:
        self._clock = clock
        self._threshold = threshold
        self._ban_time = ban_time
        self._records: dict[str, _Record] = {}
        self._in_flight: set[str] = set()
        self._failures = metrics.counter("http_login_failures", "Failed sign-in attempts, by kind", ["kind"])
        self._throttled = metrics.counter("http_login_throttled", "Sign-in attempts refused as too early")
        self._bans = metrics.counter("http_bans", "Client addresses banned after repeated failed sign-ins")

    def banned_for(self, address: str) -> float:
        """Seconds the address stays banned (0 when it is not)."""
        record = self._records.get(address)
        if record is None:
            return 0.0
        return max(0.0, record.banned_until - self._clock())

    def check(self, address: str) -> None:
        """Raise Banned or TooManyRequests if ``address`` may not try to sign in now."""
        remaining = self.banned_for(address)
        if remaining:
            raise Banned("too many failed sign-ins from this address; try later", headers=retry_after(remaining))
        record = self._records.get(address)
        if record is None or not record.failures:
            return
        now = self._clock()
        self._forget_old(record, now)
        if not record.failures:
            return
        wait = record.failures[-1] + min(2.0 ** (len(record.failures) - 1), MAX_DELAY) - now
        if wait > 0:
            self._throttled.inc()
            raise TooManyRequests("wait before trying again", headers=retry_after(wait))

    @contextmanager
    def attempt(self, address: str) -> Iterator[None]:
        """:meth:`check`, then hold the address's one slot for a slow (password) check."""
        self.check(address)
        if address in self._in_flight:
            self._throttled.inc()
            raise TooManyRequests("another sign-in from this address is being checked", headers=retry_after(1))
        self._in_flight.add(address)
        try:
            yield
        finally:
            self._in_flight.discard(address)

    def failed(self, address: str, kind: str) -> None:
        """Count a failed attempt of ``kind`` (password, refresh_token, onboarding_token)."""
        self._failures.labels(kind).inc()
        now = self._clock()
        record = self._records.get(address)
        if record is None:
            self._prune()
            record = self._records[address] = _Record()
        self._forget_old(record, now)
        record.failures.append(now)
        if len(record.failures) >= self._threshold:
            record.banned_until = now + self._ban_time
            record.failures.clear()
            self._bans.inc()

    def succeeded(self, address: str) -> None:
        """A correct secret: the address starts afresh (a ban, checked before, is not lifted)."""
        record = self._records.get(address)
        if record is not None and not self.banned_for(address):
            del self._records[address]

    @staticmethod
    def _forget_old(record: _Record, now: float) -> None:
        while record.failures and record.failures[0] < now - FAILURE_WINDOW:
            record.failures.popleft()

    def _prune(self) -> None:
        if len(self._records) < MAX_TRACKED:
            return
        now = self._clock()
        for address, record in list(self._records.items()):
            self._forget_old(record, now)
            if not record.failures and record.banned_until <= now:
                del self._records[address]
