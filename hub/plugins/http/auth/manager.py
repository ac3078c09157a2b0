"""Who may use the API: users, sign-in sessions, access tokens and long-lived tokens.

* Signing in (:meth:`AuthManager.login`) checks the password and creates a
  *refresh token* (stored, hashed) plus a short-lived *access token*.
* Access tokens live in memory only and expire after ``access_lifetime``;
  the client exchanges its refresh token for a new one (:meth:`refresh`).  A
  restart therefore costs clients one refresh, and no access token can
  outlive its session: revoking a refresh token kills its access tokens.
* Long-lived tokens (``hub token create``, the token page) are stored hashed
  and used directly as bearer tokens until revoked or expired.
* Refresh tokens expire after ``refresh_lifetime`` without use; using one
  pushes its expiry back (written at most once a day per token).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import Conflict, Unauthorized
from .guard import LoginGuard
from .passwords import PARALLEL_VERIFICATIONS, async_hash_password, async_verify_password, needs_rehash
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

SLIDE_STEP = 86400.0
"""A used refresh token's expiry is pushed back (and written) only when it gained at least this much."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request: the user and the token that proved it."""

    user: User
    root_id: str
    """The stored token behind the credential (the session's refresh token, or the long-lived token)."""
    kind: str
    """``access`` or ``long_lived``."""


@dataclass(slots=True)
class _AccessToken:
    secret_hash: str
    user_id: str
    root_id: str
    expires: float


class AuthManager:
    """See the module docstring."""

    def __init__(
        self,
        store: AuthStore,
        clock: Callable[[], float],
        *,
        access_lifetime: float = 1800.0,
        refresh_lifetime: float = 30 * 86400.0,
        guard: LoginGuard | None = None,
    ) -> None:
        self.store = store
        self.guard = guard
        self._clock = clock
        self._access_lifetime = access_lifetime
        self._refresh_lifetime = refresh_lifetime
        self._access: dict[str, _AccessToken] = {}
        self._verify_limit = asyncio.Semaphore(PARALLEL_VERIFICATIONS)
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
        if self.guard is None:
            ok, user = await self._check_password(username, password)
        else:
            with self.guard.attempt(address):
                ok, user = await self._check_password(username, password)
        if not ok or user is None:
            if self.guard is not None:
                self.guard.failed(address, "password")
            raise Unauthorized("invalid username or password", code="invalid_credentials")
        if self.guard is not None:
            self.guard.succeeded(address)
        if needs_rehash(user.password_hash):  # stronger default parameters since it was hashed
            password_hash = await async_hash_password(password)
            with self.store.transaction() as store:
                if user.id in store.users:
                    store.users[user.id].password_hash = password_hash
        return self.start_session(user, client=client, address=address)

    async def _check_password(self, username: str, password: str) -> tuple[bool, User | None]:
        self.store.reload_if_changed()
        user = self.store.user_by_name(username)
        ok = await async_verify_password(user.password_hash if user else None, password, self._verify_limit)
        return ok, user

    def start_session(self, user: User, *, client: str = "sign-in", address: str | None = None) -> dict[str, Any]:
        """A new refresh token and a first access token for ``user`` (after a checked sign-in).

        ``client`` names the session (the browser and system, see :mod:`.clients`) and ``address`` is where
        it signed in from, so the user can tell their sessions apart.
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
            now + self._refresh_lifetime,
            last_used=now,
            address=address,
        )
        with self.store.transaction() as store:
            self._purge_expired(store, now)
            store.tokens[stored.id] = stored
        return {**self._issue_access(user.id, stored.id), "refresh_token": refresh_token}

    def refresh(self, refresh_token: str, address: str) -> dict[str, Any]:
        """A new access token for a valid refresh token, else Unauthorized (counted as a failure)."""
        if self.guard is not None:
            self.guard.check(address)
        self.store.reload_if_changed()
        now = self._clock()
        parts = parse_token(refresh_token)
        stored = self.store.tokens.get(parts.id) if parts and parts.prefix == PREFIX_REFRESH else None
        if stored is None or stored.kind != KIND_REFRESH or not secret_matches(parts.secret, stored.secret_hash):
            if self.guard is not None:
                self.guard.failed(address, "refresh_token")
            raise Unauthorized("invalid refresh token; sign in again", code="invalid_refresh_token")
        if stored.expires is not None and stored.expires <= now:
            raise Unauthorized("refresh token expired; sign in again", code="invalid_refresh_token")
        stored.last_used = now
        stored.address = address
        if stored.expires is not None and now + self._refresh_lifetime - stored.expires >= SLIDE_STEP:
            with self.store.transaction() as store:
                current = store.tokens.get(stored.id)
                if current is not None:
                    current.expires = now + self._refresh_lifetime
                    current.last_used = now
                    current.address = address
        return self._issue_access(stored.user_id, stored.id)

    def _issue_access(self, user_id: str, root_id: str) -> dict[str, Any]:
        now = self._clock()
        if len(self._access) > 1000:
            self._access = {tid: token for tid, token in self._access.items() if token.expires > now}
        parts, access_token = new_token(PREFIX_ACCESS)
        self._access[parts.id] = _AccessToken(hash_secret(parts.secret), user_id, root_id, now + self._access_lifetime)
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": int(self._access_lifetime)}

    # --- checking bearer tokens -----------------------------------------------------------------
    def authenticate(self, token: str) -> Principal:
        """The principal behind a bearer token (access or long-lived), else Unauthorized saying why."""
        self.store.reload_if_changed()
        parts = parse_token(token)
        now = self._clock()
        if parts is not None and parts.prefix == PREFIX_ACCESS:
            access = self._access.get(parts.id)
            if access is not None and secret_matches(parts.secret, access.secret_hash):
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
        """A long-lived token for scripts; the string is returned once and never stored."""
        now = self._clock()
        parts, token = new_token(PREFIX_LONG_LIVED)
        expires = now + lifetime if lifetime else None
        stored = StoredToken(parts.id, user.id, KIND_LONG_LIVED, name, hash_secret(parts.secret), now, expires)
        with self.store.transaction() as store:
            self._purge_expired(store, now)
            store.tokens[stored.id] = stored
        return stored, token

    def tokens_of(self, user: User | None = None) -> list[StoredToken]:
        """Stored tokens (of one user, or all), oldest first."""
        self.store.reload_if_changed()
        tokens = [t for t in self.store.tokens.values() if user is None or t.user_id == user.id]
        return sorted(tokens, key=lambda token: (token.created, token.id))

    def revoke(self, token_id: str) -> bool:
        """Delete a stored token (and the access tokens issued from it); False if there was none."""
        with self.store.transaction() as store:
            found = store.tokens.pop(token_id, None) is not None
        if found:
            self._tokens_removed({token_id})
        return found

    def _purge_expired(self, store: AuthStore, now: float) -> None:
        """Drop expired stored tokens (called inside a transaction, so the file sheds them too)."""
        expired = {tid for tid, token in store.tokens.items() if token.expires is not None and token.expires <= now}
        for token_id in expired:
            del store.tokens[token_id]
        self._tokens_removed(expired)

    def _tokens_removed(self, token_ids: set[str]) -> None:
        if not token_ids:
            return
        self._access = {tid: token for tid, token in self._access.items() if token.root_id not in token_ids}
        for listener in self.revoked_listeners:
            listener(token_ids)
