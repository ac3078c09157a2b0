"""Who may connect to the embedded broker and with which rights: checked off the event loop, cached, throttled.

Accounts: the hub's own (a random password made at each start), ``broker: users:``
(Argon2 hashes made at start) — both may do everything — and the devices of
:mod:`.credentials` (re-read when the file changes), limited by :mod:`.acl`.

A CONNECT is decided in this order, each outcome counted in
``hub_broker_logins_total{result}``:

1. a device whose Will would go to a topic it may not publish is refused (``will_denied``);
2. a password this account presented successfully before (against the same account hash) is
   accepted at once (``accepted_cached``): a keyed BLAKE2b fingerprint of username and password,
   with a key made at start, is kept per account, never the password; a changed or removed
   account no longer matches;
3. an unknown username is refused without hashing anything (``unknown_user``);
4. an Argon2 account (``broker: users:``) is refused unchecked while the client address, or the
   username, has too many recent failures (``throttled``, :class:`.throttle.FailureThrottle`);
   an account's last good address is not held back by guesses at its username from elsewhere;
5. an Argon2 check is refused (``busy``) rather than queued when ``max_pending_logins`` are
   already waiting; otherwise it runs in a pool of two threads (it takes tens of ms and releases
   the GIL), so the event loop keeps moving messages meanwhile;
6. a device's ``$7$`` hash (:mod:`.credentials`: 101 PBKDF2 rounds, about 0.1 ms) is checked
   inline: it costs less than amqtt's own handling of a connection, never waits behind Argon2
   checks, and guards a 192-bit random password that no throttle needs to protect.  So a flood
   of bad logins from the same address (a NAT, a proxy) never locks a device out.

A wrong password counts against the client address and the username, an unknown username against the
address.  The check runs in the front door (:mod:`.front`), before amqtt sees the connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub import Metrics, RateLimitedLogger

from .acl import Rules, device_rules
from .credentials import PBKDF2_PREFIX, CredentialsError, CredentialStore, hash_password, verify_pbkdf2
from .throttle import FailureThrottle

_LOGGER = logging.getLogger(__name__)

ARGON2 = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
"""OWASP's minimum argon2id cost (19 MiB, 2 passes) for ``broker: users:``: checked in a worker thread."""

MAX_PASSWORD_BYTES = 1024
"""Longer passwords are refused unchecked: no account has one, and hashing them is work for nothing."""

CHECK_THREADS = 2

INLINE_ROUNDS = 1000
"""``$7$`` hashes with at most this many PBKDF2 rounds (ours have 101, under 0.1 ms) are checked on the loop."""


@dataclass(frozen=True, slots=True)
class Account:
    """A login: its hash, and its rights (None: may do everything)."""

    password_hash: str
    rules: Rules | None


def verify(password_hash: str, password: str) -> bool:
    """Check a password against an Argon2 or ``$7$`` hash (in a worker thread: it takes up to tens of ms)."""
    if password_hash.startswith(PBKDF2_PREFIX):
        return verify_pbkdf2(password_hash, password)
    try:
        return ARGON2.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class LoginGate:
    """Decides CONNECTs (see the module docstring) and answers what a logged-in user may do.

    Made in a worker thread (``asyncio.to_thread``): hashing ``broker: users:`` takes tens of ms each.
    """

    def __init__(
        self,
        users: dict[str, str],
        data_dir: Path,
        metrics: Metrics,
        *,
        discovery_prefix: str,
        throttle: FailureThrottle,
        user_throttle: FailureThrottle,
        max_pending: int,
    ) -> None:
        self.internal_user = f"hub-internal-{secrets.token_hex(4)}"
        self.internal_password = secrets.token_urlsafe(24)
        self._full: dict[str, Account] = {
            **{user: Account(ARGON2.hash(password), None) for user, password in users.items()},
            self.internal_user: Account(hash_password(self.internal_password), None),
        }
        self._store = CredentialStore.in_dir(data_dir)
        self._prefix = discovery_prefix
        self._devices: dict[str, Account] = self._device_accounts()
        self._by_address = throttle
        self._by_user = user_throttle
        self._max_pending = max_pending
        self._pending = 0
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[bytes, str]] = {}
        """username → (fingerprint of the password that passed, the account hash it passed against)."""
        self._good_address: dict[str, str] = {}
        self._executor = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="broker-login")
        self._results = metrics.counter("broker_logins", "CONNECTs to the embedded broker, by result", ["result"])
        self._denied = metrics.counter(
            "broker_acl_denied", "Publishes and subscriptions the embedded broker refused, by action", ["action"]
        )
        self._log = RateLimitedLogger(_LOGGER)

    @property
    def device_count(self) -> int:
        return len(self._devices)

    def close(self) -> None:
        """Stop the worker threads (checks still running finish; nobody waits for them)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- accounts -------------------------------------------------------------------
    def _device_accounts(self) -> dict[str, Account]:
        return {
            name: Account(device.password_hash, device_rules(device, self._prefix))
            for name, device in self._store.devices.items()
            if name not in self._full
        }

    def _account(self, username: str) -> Account | None:
        try:
            if self._store.reload_if_changed():
                self._devices = self._device_accounts()
                for gone in [name for name in self._verified if name not in self._full and name not in self._devices]:
                    del self._verified[gone]
                    self._good_address.pop(gone, None)
        except CredentialsError as err:  # a damaged or unreadable file: keep the last good copy, say so
            self._log.error("store", "Device credentials not reloaded: %s", err)
        return self._full.get(username) or self._devices.get(username)

    def allowed(self, username: str | None, topic: str | None, action: str) -> bool:
        """May ``username`` ``publish`` to, ``subscribe`` to or ``receive`` from ``topic``? Refusals are counted.

        On the broker's hot path (every message, for its publisher and each receiver): a dict lookup for
        full-access accounts, a few level comparisons for devices.
        """
        account = self._full.get(username or "") or self._devices.get(username or "")
        if account is not None and account.rules is None:
            return True
        if account is None or topic is None:
            allowed = False  # an account removed while connected may do nothing more
        elif action == "publish":
            allowed = account.rules.may_publish(topic)
        elif action == "subscribe":
            allowed = account.rules.may_subscribe(topic)
        else:
            allowed = account.rules.may_receive(topic)
        if not allowed:
            self._denied.labels(action).inc()
            self._log.warning(f"acl-{action}", "MQTT %s by %r on %r refused by the ACL", action, username, topic)
        return allowed

    # --- CONNECT --------------------------------------------------------------------
    def recheck(self, username: str | None, password: str | None) -> bool:
        """True when these credentials passed :meth:`authenticate` against the account as it is now (no counting)."""
        account = self._account(username) if username else None
        cached = self._verified.get(username or "")
        if account is None or cached is None or cached[1] != account.password_hash:
            return False
        return hmac.compare_digest(cached[0], self._fingerprint(username or "", password or ""))

    def _fingerprint(self, username: str, password: str) -> bytes:
        message = username.encode() + b"\0" + password.encode()
        return hashlib.blake2b(message, key=self._key, digest_size=16).digest()

    def _result(self, result: str, username: str | None, address: str) -> bool:
        self._results.labels(result).inc()
        accepted = result.startswith("accepted")
        if not accepted and result != "no_credentials":
            self._log.warning(f"login-{result}", "MQTT login %r from %s refused: %s", username, address, result)
        return accepted

    async def authenticate(
        self, username: str | None, password: str | None, address: str | None, will_topic: str | None
    ) -> bool:
        """True when the CONNECT may proceed; see the module docstring for the order of checks."""
        address = address or "?"
        if not username:
            return self._result("no_credentials", None, address)
        password = password or ""
        account = self._account(username)
        if account is not None and account.rules is not None and will_topic is not None:
            if not account.rules.may_publish(will_topic):
                return self._result("will_denied", username, address)
        fingerprint = self._fingerprint(username, password)
        cached = self._verified.get(username)
        if account is not None and cached is not None and cached[1] == account.password_hash:
            if hmac.compare_digest(cached[0], fingerprint):
                return self._result("accepted_cached", username, address)
        if account is None:
            self._by_address.failed(address)
            return self._result("unknown_user", username, address)
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            good = False
        elif _cheap(account.password_hash):
            good = verify_pbkdf2(account.password_hash, password)
        else:
            held_back = self._by_user.blocked(username) and self._good_address.get(username) != address
            if self._by_address.blocked(address) or held_back:
                return self._result("throttled", username, address)
            if self._pending >= self._max_pending:
                return self._result("busy", username, address)
            self._pending += 1
            try:
                loop = asyncio.get_running_loop()
                good = await loop.run_in_executor(self._executor, verify, account.password_hash, password)
            finally:
                self._pending -= 1
        if not good:
            self._by_address.failed(address)
            self._by_user.failed(username)
            return self._result("bad_password", username, address)
        self._verified[username] = (fingerprint, account.password_hash)
        self._good_address[username] = address
        return self._result("accepted", username, address)


def _cheap(password_hash: str) -> bool:
    """A ``$7$`` hash with few enough rounds to check on the event loop (see INLINE_ROUNDS)."""
    if not password_hash.startswith(PBKDF2_PREFIX):
        return False
    rounds = password_hash[len(PBKDF2_PREFIX) :].split("$", 1)[0]
    return rounds.isdigit() and int(rounds) <= INLINE_ROUNDS
