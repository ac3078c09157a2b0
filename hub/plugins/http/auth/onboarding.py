"""Creating the owner account on first run without a window in which a stranger could claim the hub.

While no user exists, ``hub run`` makes one random onboarding token, keeps
only its hash in memory, and logs a link carrying it (in the URL fragment, so
it reaches neither the server's access log nor a Referer).  Whoever can read
the hub's console can create the owner through ``POST /api/onboarding``.

The token is: single use (consumed before the account is written, so two
racing requests cannot both win), valid only while the hub has no user at all
(``hub user create`` from the CLI also closes the window), limited in time,
and guessing it counts as a failed sign-in (throttled, then banned).  It is not
restricted to loopback: a headless Raspberry Pi is set up from another machine,
and the secret, not the address, is what proves the operator.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from hub.web import Forbidden, Unauthorized

from .manager import AuthManager
from .tokens import hash_secret, secret_matches


class Onboarding:
    """The one-time owner-creation token; see the module docstring."""

    def __init__(self, auth: AuthManager, clock: Callable[[], float], lifetime: float) -> None:
        self._auth = auth
        self._clock = clock
        self._lifetime = lifetime
        self._hash: str | None = None
        self._expires = 0.0

    @property
    def required(self) -> bool:
        """True while the hub has no user."""
        self._auth.store.reload_if_changed()
        return not self._auth.store.users

    def start(self) -> str | None:
        """Make a new token if onboarding is required (returned once, for the log), else None."""
        if not self.required:
            self._hash = None
            return None
        token = secrets.token_urlsafe(32)
        self._hash = hash_secret(token)
        self._expires = self._clock() + self._lifetime
        return token

    async def complete(self, token: str, username: str, password: str, address: str) -> dict[str, Any]:
        """Create the owner with a valid token and sign them in; Forbidden/Unauthorized otherwise."""
        guard = self._auth.guard
        if guard is not None:
            guard.check(address)
        if not self.required:
            self._hash = None
            raise Forbidden("the hub already has an owner; sign in instead", code="onboarding_done")
        valid = self._hash is not None and self._clock() < self._expires and secret_matches(token, self._hash)
        if not valid:
            if guard is not None:
                guard.failed(address, "onboarding_token")
            raise Unauthorized("invalid or expired onboarding token", code="invalid_onboarding_token")
        self._hash = None
        user = await self._auth.create_user(username, password, is_owner=True)
        if guard is not None:
            guard.succeeded(address)
        return {**self._auth.start_session(user), "user": user.public()}
