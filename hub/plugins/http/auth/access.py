"""Short-lived access tokens: in memory only, each tied to the stored token (session) it was issued from.

Issuing and checking are O(1) whatever the number of live tokens: tokens all
live for the same ``lifetime``, so the order they were issued in is the order
they expire in, and expired ones are dropped from the front of a queue as new
ones are issued (the token table is never rebuilt).  An index by session lets
revoking a session drop exactly its access tokens.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .tokens import PREFIX_ACCESS, ParsedToken, hash_secret, new_token, secret_matches


@dataclass(slots=True)
class AccessToken:
    """One live access token (its secret only as a hash)."""

    secret_hash: str
    user_id: str
    root_id: str
    expires: float


class AccessTokens:
    """See the module docstring."""

    def __init__(self, clock: Callable[[], float], lifetime: float) -> None:
        self._clock = clock
        self.lifetime = lifetime
        self._tokens: dict[str, AccessToken] = {}
        self._by_root: dict[str, set[str]] = {}
        self._issued: deque[tuple[float, str]] = deque()
        """(expiry, id) in issue order, which is expiry order; ids of revoked tokens are skipped when popped."""

    def __len__(self) -> int:
        return len(self._tokens)

    def issue(self, user_id: str, root_id: str) -> str:
        """A new access token string for ``user_id``'s session (or long-lived token) ``root_id``."""
        now = self._clock()
        self._drop_expired(now)
        parts, token = new_token(PREFIX_ACCESS)
        expires = now + self.lifetime
        self._tokens[parts.id] = AccessToken(hash_secret(parts.secret), user_id, root_id, expires)
        self._by_root.setdefault(root_id, set()).add(parts.id)
        self._issued.append((expires, parts.id))
        return token

    def find(self, parts: ParsedToken) -> AccessToken | None:
        """The live or expired (not yet dropped) token whose secret matches, else None."""
        access = self._tokens.get(parts.id)
        if access is not None and secret_matches(parts.secret, access.secret_hash):
            return access
        return None

    def drop_roots(self, root_ids: Iterable[str]) -> None:
        """Forget every access token issued from these stored tokens (revoked, expired, evicted)."""
        for root_id in root_ids:
            for token_id in self._by_root.pop(root_id, ()):
                self._tokens.pop(token_id, None)

    def _drop_expired(self, now: float) -> None:
        issued = self._issued
        while issued and issued[0][0] <= now:
            _expires, token_id = issued.popleft()
            access = self._tokens.pop(token_id, None)
            if access is not None:
                siblings = self._by_root.get(access.root_id)
                if siblings is not None:
                    siblings.discard(token_id)
                    if not siblings:
                        del self._by_root[access.root_id]
