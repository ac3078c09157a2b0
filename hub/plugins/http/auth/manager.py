"""Who may use the API: users, sign-in sessions, access tokens and long-lived tokens.

* Signing in (:meth:`AuthManager.login`) checks the password and creates a
  session: a *refresh token* (stored, hashed) plus a short-lived *access token*.
  A user keeps at most ``max_sessions`` sessions; a new one evicts the least
  recently used.
* Access tokens live in memory only (:mod:`.access`) and expire after
  ``access_lifetime``; the client exchanges its refresh token for a new one
  (:meth:`refresh`).  A restart therefore costs clients one refresh, and no
  access token can outlive its session: revoking a session kills its access tokens.
* Refresh tokens rotate, as the OAuth 2.0 Security Best Current Practice
  (RFC 9700, 4.14) asks: every exchange returns a new refresh token and the old
  one stops working.  Presenting an old one again means two parties hold the
  session (a stolen token), so the whole session is revoked.  A session expires
  ``refresh_lifetime`` after its last use and in any case ``session_lifetime``
  after it signed in.
* Long-lived tokens (``hub token create``, the token page) are stored hashed
  and used directly as bearer tokens until revoked or expired.  Creating one
  through the API needs the user's password again: a stolen 30-minute access
  token must not become a permanent one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from hub.web import Conflict, Forbidden, Unauthorized

from .access import AccessTokens
from .guard import LoginGuard
from .passwords import async_hash_password, async_verify_password, needs_rehash
from .store import KIND_LONG_LIVED, KIND_REFRESH, AuthStore, StoredToken, User
from .tokens import (
    PREFIX_ACCESS,
    PREFIX_LONG_LIVED,
    PREFIX_REFRESH,
    hash_secret,
    new_token,
    parse_token,
    secret_matches,
)

_LOGGER = logging.getLogger(__name__)

PREVIOUS_SECRETS = 10
"""Rotated-out refresh secrets remembered per session, to recognise their reuse."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request: the user and the token that proved it."""

    user: User
    root_id: str
    """The stored token behind the credential (the session's refresh token, or the long-lived token)."""
    kind: str
    """``access`` or ``long_lived``."""


class AuthManager:
    """See the module docstring."""

    def __init__(
        self,
        store: AuthStore,
        clock: Callable[[], float],
        *,
        access_lifetime: float = 1800.0,
        refresh_lifetime: float = 30 * 86400.0,
        session_lifetime: float = 90 * 86400.0,
        max_sessions: int = 30,
        guard: LoginGuard | None = None,
    ) -> None:
        self.store = store
        self.guard = guard
        self._clock = clock
        self._refresh_lifetime = refresh_lifetime
        self._session_lifetime = session_lifetime
        self._max_sessions = max_sessions
        self._access = AccessTokens(clock, access_lifetime)
        self.revoked_listeners: list[Callable[[set[str]], None]] = []
        """Called with stored-token ids that stopped being valid (the WebSocket closes their connections)."""
        store.removed_listeners.append(self._tokens_removed)

    # --- users ---------------------------------------------------------------------------
    async def create_user(self, username: str, password: str, *, is_owner: bool = False) -> User:
        """Add a user (Conflict if the name is taken, case-insensitively)."""
        password_hash = await async_hash_password(password)
        with self.store.transaction() as store:
            if store.user_by_name(username) is not None:
                raise Conflict(f"user {username!r} already exists")
            user = User(uuid.uuid4().hex, username, password_hash, self._clock(), is_owner or not store.users)
            store.users[user.id] = user
        return user

    async def set_password(self, user: User, password: str) -> None:
        """Change a password; every session and token of the user is revoked."""
        password_hash = await async_hash_password(password)
        with self.store.transaction() as store:
            store.users[user.id].password_hash = password_hash
            removed = {tid for tid, token in store.tokens.items() if token.user_id == user.id}
            for token_id in removed:
                del store.tokens[token_id]
        self._tokens_removed(removed)

    def delete_user(self, user: User) -> None:
        """Remove a user and everything they signed in with."""
        with self.store.transaction() as store:
            store.users.pop(user.id, None)
            removed = {tid for tid, token in store.tokens.items() if token.user_id == user.id}
            for token_id in removed:
                del store.tokens[token_id]
        self._tokens_removed(removed)

    # --- signing in ------------------------------------------------------------------------
    async def login(self, username: str, password: str, address: str, client: str = "sign-in") -> dict[str, Any]:
        """Check a password; on success a new session (refresh + access token) named ``client``, else Unauthorized."""
        return await self.open_session(
            await self.check_password(username, password, address), password, address, client
        )

    async def open_session(self, user: User, password: str, address: str, client: str) -> dict[str, Any]:
        """The session of a sign-in whose password :meth:`check_password` accepted (rehashed if it is due)."""
        if needs_rehash(user.password_hash):  # stronger default parameters since it was hashed
            password_hash = await async_hash_password(password)
            with self.store.transaction() as store:
                if user.id in store.users:
                    store.users[user.id].password_hash = password_hash
        return self.start_session(user, client=client, address=address)

    async def check_password(self, username: str, password: str, address: str) -> User:
        """The user whose password this is, else Unauthorized; through the guard's gate (429 when busy)."""
        gate = self.guard.password_check(address, username) if self.guard is not None else nullcontext()
        async with gate:
            self.store.reload_if_changed()
            user = self.store.user_by_name(username)
            ok = await async_verify_password(user.password_hash if user else None, password)
        if not ok or user is None:
            if self.guard is not None:
                self.guard.failed(address, "password", username)
            raise Unauthorized("invalid username or password", code="invalid_credentials")
        if self.guard is not None:
            self.guard.succeeded(address, username)
        return user

    def start_session(self, user: User, *, client: str = "sign-in", address: str | None = None) -> dict[str, Any]:
        """A new refresh token and a first access token for ``user`` (after a checked sign-in).

        ``client`` names the session (the browser and system, see :mod:`.clients`) and ``address`` is where
        it signed in from, so the user can tell their sessions apart.  Beyond ``max_sessions`` the user's
        least recently used sessions are ended.
        """
        now = self._clock()
        parts, refresh_token = new_token(PREFIX_REFRESH)
        stored = StoredToken(
            parts.id,
            user.id,
            KIND_REFRESH,
            client,
            hash_secret(parts.secret),
            now,
            min(now + self._refresh_lifetime, now + self._session_lifetime),
            last_used=now,
            address=address,
        )
        with self._changing() as (store, removed):
            self._purge_expired(store, now, removed)
            sessions = sorted(
                (t for t in store.tokens.values() if t.user_id == user.id and t.kind == KIND_REFRESH),
                key=lambda token: (token.last_used or token.created, token.created),
            )
            for evicted in sessions[: max(0, len(sessions) - self._max_sessions + 1)]:
                del store.tokens[evicted.id]
                removed.add(evicted.id)
            store.tokens[stored.id] = stored
        return {**self._issue_access(user.id, stored.id), "refresh_token": refresh_token}

    def refresh(self, refresh_token: str, address: str) -> dict[str, Any]:
        """A new access token and a new refresh token for a valid refresh token (the old one is spent).

        Unauthorized for an unknown token (counted as a failed sign-in), an expired session, or a spent
        token, whose reuse also ends the session.  A valid token works even from a banned address.
        """
        self.store.reload_if_changed()
        now = self._clock()
        parts = parse_token(refresh_token)
        stored = self.store.tokens.get(parts.id) if parts and parts.prefix == PREFIX_REFRESH else None
        if stored is None or stored.kind != KIND_REFRESH or not secret_matches(parts.secret, stored.secret_hash):
            if stored is not None and any(secret_matches(parts.secret, old) for old in stored.previous_hashes):
                self._reused(stored, address)
            if self.guard is not None:
                self.guard.failed(address, "refresh_token")
                self.guard.refuse_if_banned(address)  # a banned address hears that it is banned
            raise Unauthorized("invalid refresh token; sign in again", code="invalid_refresh_token")
        if self._session_expires(stored) <= now:
            raise Unauthorized("session expired; sign in again", code="invalid_refresh_token")
        new_parts = parts._replace(secret=new_token(PREFIX_REFRESH)[0].secret)
        with self._changing() as (store, _removed):
            current = store.tokens.get(stored.id)
            if current is None or current.secret_hash != stored.secret_hash:  # revoked or rotated meanwhile
                raise Unauthorized("invalid refresh token; sign in again", code="invalid_refresh_token")
            current.previous_hashes = [*current.previous_hashes, current.secret_hash][-PREVIOUS_SECRETS:]
            current.secret_hash = hash_secret(new_parts.secret)
            current.last_used = now
            current.address = address
            current.expires = min(now + self._refresh_lifetime, current.created + self._session_lifetime)
        return {**self._issue_access(stored.user_id, stored.id), "refresh_token": ".".join(new_parts)}

    def _reused(self, stored: StoredToken, address: str) -> None:
        """A spent refresh token came back: someone else has (had) the session's token, so end the session."""
        user = self.store.users.get(stored.user_id)
        _LOGGER.warning(
            "A spent refresh token of session %s (user %s) was presented again from %s: the session is revoked "
            "(its token was probably copied)",
            stored.id,
            user.username if user else "?",
            address,
        )
        self.revoke(stored.id)
        raise Unauthorized("this refresh token was already used; the session was ended", code="refresh_token_reused")

    def _session_expires(self, stored: StoredToken) -> float:
        limit = stored.created + self._session_lifetime
        return limit if stored.expires is None else min(stored.expires, limit)

    def _issue_access(self, user_id: str, root_id: str) -> dict[str, Any]:
        token = self._access.issue(user_id, root_id)
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(self._access.lifetime)}

    # --- checking bearer tokens -----------------------------------------------------------------
    def authenticate(self, token: str) -> Principal:
        """The principal behind a bearer token (access or long-lived), else Unauthorized saying why."""
        self.store.reload_if_changed()
        parts = parse_token(token)
        now = self._clock()
        if parts is not None and parts.prefix == PREFIX_ACCESS:
            access = self._access.find(parts)
            if access is not None:
                if access.expires <= now:
                    raise Unauthorized("access token expired; refresh it", code="token_expired")
                user = self.store.users.get(access.user_id)
                session = self.store.tokens.get(access.root_id)
                if user is not None and session is not None:
                    session.last_used = now  # in memory; written with the session's next change
                    return Principal(user, access.root_id, "access")
        elif parts is not None and parts.prefix == PREFIX_LONG_LIVED:
            stored = self.store.tokens.get(parts.id)
            if (
                stored is not None
                and stored.kind == KIND_LONG_LIVED
                and secret_matches(parts.secret, stored.secret_hash)
            ):
                if stored.expires is not None and stored.expires <= now:
                    raise Unauthorized("token expired", code="token_expired")
                user = self.store.users.get(stored.user_id)
                if user is not None:
                    stored.last_used = now
                    return Principal(user, stored.id, KIND_LONG_LIVED)
        raise Unauthorized("invalid or revoked token", code="invalid_token")

    # --- long-lived tokens and sessions --------------------------------------------------------------
    def create_long_lived(self, user: User, name: str, lifetime: float | None = None) -> tuple[StoredToken, str]:
        """A long-lived token for scripts; the string is returned once and never stored.

        Callers on the API check the user's password first (:meth:`check_password`); the CLI, which works
        on the auth file itself, needs no more than access to the machine.
        """
        now = self._clock()
        parts, token = new_token(PREFIX_LONG_LIVED)
        expires = now + lifetime if lifetime else None
        stored = StoredToken(parts.id, user.id, KIND_LONG_LIVED, name, hash_secret(parts.secret), now, expires)
        with self._changing() as (store, removed):
            self._purge_expired(store, now, removed)
            store.tokens[stored.id] = stored
        return stored, token

    async def reauthenticate(self, user: User, password: str, address: str) -> None:
        """Forbidden unless ``password`` is ``user``'s (a failure counts like a failed sign-in)."""
        try:
            await self.check_password(user.username, password, address)
        except Unauthorized:
            raise Forbidden("the password is not correct", code="reauthentication_failed") from None

    def tokens_of(self, user: User | None = None) -> list[StoredToken]:
        """Stored tokens (of one user, or all), oldest first."""
        self.store.reload_if_changed()
        tokens = [t for t in self.store.tokens.values() if user is None or t.user_id == user.id]
        return sorted(tokens, key=lambda token: (token.created, token.id))

    def revoke(self, token_id: str) -> bool:
        """Delete a stored token (and the access tokens issued from it); False if there was none."""
        with self._changing() as (store, removed):
            if store.tokens.pop(token_id, None) is not None:
                removed.add(token_id)
        return bool(removed)

    @contextmanager
    def _changing(self) -> Iterator[tuple[AuthStore, set[str]]]:
        """A store transaction; the ids the caller adds to the set are announced as removed after the write."""
        removed: set[str] = set()
        with self.store.transaction() as store:
            yield store, removed
        self._tokens_removed(removed)

    def _purge_expired(self, store: AuthStore, now: float, removed: set[str]) -> None:
        """Drop expired stored tokens (inside a transaction, so the file sheds them too)."""
        for token_id, token in list(store.tokens.items()):
            expires = self._session_expires(token) if token.kind == KIND_REFRESH else token.expires
            if expires is not None and expires <= now:
                del store.tokens[token_id]
                removed.add(token_id)

    def _tokens_removed(self, token_ids: set[str]) -> None:
        if not token_ids:
            return
        self._access.drop_roots(token_ids)
        for listener in self.revoked_listeners:
            listener(token_ids)
