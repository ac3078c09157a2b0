"""Token strings: ``<kind>.<id>.<secret>``, looked up by id, checked by a constant-time hash comparison.

The prefix says what the token is (``hat`` short-lived access, ``hrt``
refresh, ``hlt`` long-lived) so a leaked one is recognisable by secret
scanners and a refresh token can never be used as a bearer token.  The id
makes lookup O(1) without storing the secret; the secret is 256 random bits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

PREFIX_ACCESS = "hat"
PREFIX_REFRESH = "hrt"
PREFIX_LONG_LIVED = "hlt"

_TOKEN_RE = re.compile(r"^(hat|hrt|hlt)\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")


class ParsedToken(NamedTuple):
    """The three parts of a token string."""

    prefix: str
    id: str
    secret: str


def new_token(prefix: str) -> tuple[ParsedToken, str]:
    """A fresh token: its parts and the string handed to the client (shown once, never stored)."""
    parts = ParsedToken(prefix, secrets.token_hex(8), secrets.token_urlsafe(32))
    return parts, ".".join(parts)


def parse_token(token: str) -> ParsedToken | None:
    """The parts of a well-formed token string, or None."""
    match = _TOKEN_RE.match(token) if len(token) < 128 else None
    return ParsedToken(*match.groups()) if match else None


def hash_secret(secret: str) -> str:
    """What is stored instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(hash_secret(secret), secret_hash)
