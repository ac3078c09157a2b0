"""Password hashing with argon2id (argon2-cffi), kept off the event loop.

One verification costs tens of milliseconds and 64 MiB on purpose; it runs in
a worker thread so the hub keeps ingesting.  How many run at once, and how
many may wait, is the sign-in guard's gate (:meth:`.guard.LoginGuard.password_check`),
so a burst of sign-ins can neither exhaust a small host's memory nor queue
without bound.  An unknown username is checked against a dummy hash, so timing
does not reveal which names exist.
"""

from __future__ import annotations

import asyncio
import functools
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
"""Longer gains nothing and would make hashing a denial-of-service lever."""

_USERNAME = r"[A-Za-z0-9._@-]{1,64}"
USERNAME_PATTERN = f"^{_USERNAME}$"
"""The rule as an anchored pattern for JSON Schema (Python checks with fullmatch: ``$`` admits a newline)."""
_USERNAME_RE = re.compile(_USERNAME)

_HASHER = PasswordHasher()


def check_username(username: str) -> None:
    """Raise ValueError unless ``username`` is 1-64 letters, digits and ``. _ @ -``."""
    if not isinstance(username, str) or not _USERNAME_RE.fullmatch(username):
        raise ValueError("usernames are 1-64 letters, digits and . _ @ -")


def check_password_policy(password: str) -> None:
    """Raise ValueError explaining why ``password`` is not acceptable for a new account."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """An argon2id hash string (salt and parameters included)."""
    return _HASHER.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash("not a password anyone has")


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a None hash (unknown user) costs the same and is False."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's defaults."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


async def async_verify_password(password_hash: str | None, password: str) -> bool:
    """:func:`verify_password` in a worker thread."""
    return await asyncio.to_thread(verify_password, password_hash, password)


async def async_hash_password(password: str) -> str:
    """:func:`hash_password` in a worker thread."""
    return await asyncio.to_thread(hash_password, password)
