"""Throttling and banning of failed sign-ins, per client address and per username, and the password-check gate.

Every failed secret check on a sign-in endpoint (password, refresh token,
onboarding token) counts against the address it came from, and a failed
password also against the username it named.  After the n-th recent failure
the next attempt from that address, or for that username, must wait
2**(n-1) seconds (at most 30); an early attempt gets 429 without its password
even being checked, so guessing costs the attacker time and the hub no argon2
work.  Counting per username too means spreading guesses at one account over
many addresses gains nothing.  A success clears the records of both.

At ``threshold`` failures within the window the *address* is banned from
signing in with a password (or an onboarding token) for ``ban_time``.  A ban
is about credential guessing only: requests with a valid bearer token, and
the exchange of a valid refresh token, are never refused for it, so one
client behind a shared NAT address who guesses passwords cannot cut off the
signed-in people behind the same address.  Usernames are throttled but never
banned: a ban per username would let anyone lock the owner out.  Admins list
and lift bans (``GET``/``DELETE /api/auth/bans``, ``hub ban …``).

Password checks pass a gate (:meth:`LoginGuard.password_check`): at most
``parallel`` run (argon2id costs tens of milliseconds and 64 MiB each), at
most ``queue`` wait, one at a time per address and per username, and
anything beyond is refused at once with 429 and ``Retry-After`` instead of
queueing, so a flood of guesses never makes a sign-in wait behind it.
Addresses someone signed in from before (since the start, or the addresses
of stored sessions) have a lane of their own (:data:`KNOWN_LANE` checks):
a flood from new addresses fills the open lane but cannot keep the owner,
signing in from home as usual, from being checked at once, and the open lane
starts no new check while a known address's check waits or runs (argon2 is
CPU-bound: the fewer run beside it, the sooner it is done).

Bearer tokens on ordinary requests do not count: they are 256-bit random, and
counting them would ban a dashboard whose token merely expired.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from hub import Metrics
from hub.web import Banned, TooManyRequests, retry_after

FAILURE_WINDOW = 3600.0
"""Failures older than this are forgotten."""
MAX_DELAY = 30.0
MAX_TRACKED = 10_000
"""Addresses (and, separately, usernames) remembered at most; beyond that, idle records are pruned."""
BUSY_RETRY = 1.0
"""Retry-After (seconds) when the password-check queue is full."""
KNOWN_LANE = (1, 2)
"""Password checks running and waiting at most in the lane of addresses with an earlier successful sign-in."""
MAX_KNOWN = 1000
"""Addresses with an earlier successful sign-in remembered at most (least recently successful forgotten)."""


class _Lane:
    """A bounded queue in front of a few hashing slots: admits, or says it is full."""

    def __init__(self, parallel: int, queue: int) -> None:
        self.slots = asyncio.Semaphore(parallel)
        self.capacity = parallel + queue
        self.admitted = 0


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    banned_until: float = 0.0


class _Throttle:
    """Recent failures per key (an address or a username) and the delay they impose."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.records: dict[str, _Record] = {}

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        record = self.records.get(key)
        if record is None or not record.failures:
            return 0.0
        now = self.clock()
        self.forget_old(record, now)
        if not record.failures:
            return 0.0
        return max(0.0, record.failures[-1] + min(2.0 ** (len(record.failures) - 1), MAX_DELAY) - now)

    def fail(self, key: str) -> _Record:
        now = self.clock()
        record = self.records.get(key)
        if record is None:
            self.prune()
            record = self.records[key] = _Record()
        self.forget_old(record, now)
        record.failures.append(now)
        return record

    def clear(self, key: str) -> None:
        record = self.records.get(key)
        if record is not None and record.banned_until <= self.clock():
            del self.records[key]

    @staticmethod
    def forget_old(record: _Record, now: float) -> None:
        while record.failures and record.failures[0] < now - FAILURE_WINDOW:
            record.failures.popleft()

    def prune(self) -> None:
        if len(self.records) < MAX_TRACKED:
            return
        now = self.clock()
        for key, record in list(self.records.items()):
            self.forget_old(record, now)
            if not record.failures and record.banned_until <= now:
                del self.records[key]


class LoginGuard:
    """See the module docstring."""

    def __init__(
        self,
        metrics: Metrics,
        clock: Callable[[], float],
        *,
        threshold: int,
        ban_time: float,
        parallel: int = 2,
        queue: int = 8,
    ) -> None:
        self._clock = clock
        self._threshold = threshold
        self._ban_time = ban_time
        self._addresses = _Throttle(clock)
        self._usernames = _Throttle(clock)
        self._in_flight: set[str] = set()
        self._open = _Lane(parallel, queue)
        self._known_lane = _Lane(*KNOWN_LANE)
        self._known_idle = asyncio.Event()
        self._known_idle.set()
        self._known: OrderedDict[str, None] = OrderedDict()
        """Addresses with an earlier successful sign-in, most recent last."""
        self._failures = metrics.counter("http_login_failures", "Failed sign-in attempts, by kind", ["kind"])
        self._throttled = metrics.counter(
            "http_login_throttled", "Sign-in attempts refused as too early or too many, by reason", ["reason"]
        )
        self._bans = metrics.counter("http_bans", "Client addresses banned after repeated failed sign-ins")
        self._admitted_gauge = metrics.gauge(
            "http_password_checks", "Password checks running or waiting for a slot, by lane", ["lane"]
        )

    # --- bans -------------------------------------------------------------------------------
    def banned_for(self, address: str) -> float:
        """Seconds the address stays banned from signing in (0 when it is not)."""
        record = self._addresses.records.get(address)
        if record is None:
            return 0.0
        return max(0.0, record.banned_until - self._clock())

    def bans(self) -> list[dict[str, Any]]:
        """The addresses banned now, soonest lifted first."""
        now = self._clock()
        found = [
            {"address": address, "until": record.banned_until, "remaining_seconds": record.banned_until - now}
            for address, record in self._addresses.records.items()
            if record.banned_until > now
        ]
        return sorted(found, key=lambda ban: (ban["until"], ban["address"]))

    def lift(self, address: str) -> bool:
        """End the ban of ``address`` and forget its failures; False if it was not banned."""
        banned = self.banned_for(address) > 0
        if banned:
            del self._addresses.records[address]
        return banned

    # --- checks -----------------------------------------------------------------------------
    def refuse_if_banned(self, address: str) -> None:
        """Raise Banned (with Retry-After) while ``address`` is banned."""
        remaining = self.banned_for(address)
        if remaining:
            raise Banned("too many failed sign-ins from this address; try later", headers=retry_after(remaining))

    def check(self, address: str, username: str | None = None) -> None:
        """Raise Banned or TooManyRequests if ``address`` (or ``username``) may not try to sign in now."""
        self.refuse_if_banned(address)
        wait = self._addresses.wait(address)
        if wait > 0:
            self._throttled.labels("address").inc()
            raise TooManyRequests("wait before trying again", headers=retry_after(wait))
        if username is not None:
            wait = self._usernames.wait(_user_key(username))
            if wait > 0:
                self._throttled.labels("username").inc()
                raise TooManyRequests("wait before trying this username again", headers=retry_after(wait))

    @asynccontextmanager
    async def password_check(self, address: str, username: str) -> AsyncIterator[None]:
        """:meth:`check`, then a place at the gate for one slow (password) check; see the module docstring."""
        self.check(address, username)
        keys = (f"a:{address}", f"u:{_user_key(username)}")
        if any(key in self._in_flight for key in keys):
            self._throttled.labels("in_flight").inc()
            raise TooManyRequests(
                "another sign-in from this address or for this user is being checked", headers=retry_after(1)
            )
        name = "known" if address in self._known else "open"
        lane = self._known_lane if name == "known" else self._open
        if lane.admitted >= lane.capacity:
            self._throttled.labels("busy").inc()
            raise TooManyRequests(
                "the hub is busy checking passwords; try again shortly", headers=retry_after(BUSY_RETRY)
            )
        gauge = self._admitted_gauge.labels(name)
        self._in_flight.update(keys)
        lane.admitted += 1
        gauge.set(lane.admitted)
        if lane is self._known_lane:
            self._known_idle.clear()
        try:
            async with lane.slots:
                if lane is self._open:  # the hash competes for the CPU: start none while a known address waits
                    await self._known_idle.wait()
                yield
        finally:
            lane.admitted -= 1
            gauge.set(lane.admitted)
            if self._known_lane.admitted == 0:
                self._known_idle.set()
            self._in_flight.difference_update(keys)

    def remember(self, address: str | None) -> None:
        """Note an address someone signed in from: its password checks get the known lane."""
        if not address:
            return
        self._known[address] = None
        self._known.move_to_end(address)
        while len(self._known) > MAX_KNOWN:
            self._known.popitem(last=False)

    def failed(self, address: str, kind: str, username: str | None = None) -> None:
        """Count a failed attempt of ``kind`` (password, refresh_token, onboarding_token)."""
        self._failures.labels(kind).inc()
        record = self._addresses.fail(address)
        if username is not None:
            self._usernames.fail(_user_key(username))
        if len(record.failures) >= self._threshold:
            record.banned_until = self._clock() + self._ban_time
            record.failures.clear()
            self._bans.inc()

    def succeeded(self, address: str, username: str | None = None) -> None:
        """A correct secret: the address and the username start afresh (a ban, checked before, is not lifted)."""
        self._addresses.clear(address)
        self.remember(address)
        if username is not None:
            self._usernames.clear(_user_key(username))


def _user_key(username: str) -> str:
    return username.casefold()
