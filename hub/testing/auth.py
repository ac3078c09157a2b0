"""A user and an API token on a test's hub, without going through the onboarding link or the CLI.

Plugins with HTTP routes (the dashboard, a third-party page) need a signed-in
caller in their tests.  This is what ``hub user create`` followed by ``hub token
create`` does, in-process, so tests never reach into the http plugin's modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub import Hub

TEST_PASSWORD = "correct horse battery staple"
"""The password :func:`create_user_and_token` gives a user unless told otherwise (long enough for the policy)."""


@dataclass(frozen=True)
class UserToken:
    """A user made by :func:`create_user_and_token`, with what a test needs to act as them."""

    username: str
    password: str
    token: str
    """A long-lived API token: ``Authorization: Bearer <token>``, also for the WebSocket's ``auth`` message."""
    access_token: str | None = None
    """An access token of a signed-in session (what ``POST /api/auth/login`` returns), if the API was running."""
    refresh_token: str | None = None
    """That session's refresh token, for ``POST /api/auth/token``."""

    @property
    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` with the long-lived token."""
        return {"Authorization": f"Bearer {self.token}"}


async def create_user_and_token(
    hub: Hub, username: str = "owner", password: str = TEST_PASSWORD, *, owner: bool = True
) -> UserToken:
    """Create a user on ``hub`` and a long-lived API token for them; works before start and while running.

    Before start the user is written to the hub's auth file, as ``hub user create``
    would, so no onboarding link is made.  While the http plugin serves, the user and
    token go through the running server, which then also signs the user in (the
    session's ``access_token`` and ``refresh_token``).  The hub's first user is always
    an owner.  Needs the ``http`` built-in installed (it owns users and tokens), not
    necessarily loaded in ``hub``.
    """
    from hub.plugins.http import DATA_SERVER
    from hub.plugins.http.auth.manager import AuthManager
    from hub.plugins.http.auth.store import AuthStore

    server = hub.data.get(DATA_SERVER)
    auth = server.auth if server is not None else AuthManager(AuthStore.in_dir(hub.data_dir), hub.clock)
    user = await auth.create_user(username, password, is_owner=owner)
    _stored, token = auth.create_long_lived(user, f"test token of {username}")
    if server is None:
        return UserToken(username, password, token)
    session = auth.start_session(user)
    return UserToken(username, password, token, session["access_token"], session["refresh_token"])
