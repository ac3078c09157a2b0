"""Fixtures for the http plugin's tests: a running hub with the real server on a free loopback port.

``api`` is a started hub (the http plugin only) with an owner account, an
:class:`~http_helpers.Api` around a real aiohttp client, and a hand-moved clock
for token expiry and ban timing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
import pytest
from http_helpers import OWNER, OWNER_PASSWORD, Api

from hub import DATA_HTTP_URL
from hub.testing import FakeClock, create_user_and_token


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())  # real time, so tokens and logs look sane


@pytest.fixture
async def make_api(hub_factory, clock) -> AsyncIterator:
    """Factory: ``await make_api(http_config, builtins=…, plugins=…, config=…, owner=True)`` → a started Api.

    With ``owner`` the hub gets its owner after start, signed in (``api.token`` is a session's access token).
    """
    sessions: list[aiohttp.ClientSession] = []

    async def factory(
        http: dict[str, Any] | None = None,
        *,
        builtins: Iterable[str] = ("hub.plugins.http",),
        plugins: Iterable[tuple[Any, str]] = (),
        config: dict[str, Any] | None = None,
        owner: bool = True,
    ) -> Api:
        full = dict(config or {})
        full["http"] = {"port": 0, **(http or {})}
        hub = await hub_factory(full, builtins=builtins, plugins=plugins, clock=clock)
        session = aiohttp.ClientSession()
        sessions.append(session)
        api = Api(hub, hub.data[DATA_HTTP_URL], session, clock)
        if owner:  # on the running hub, so the owner is also signed in (a session: access and refresh token)
            user = await create_user_and_token(hub, OWNER, OWNER_PASSWORD)
            assert user.access_token is not None and user.refresh_token is not None
            api.token, api.refresh_token = user.access_token, user.refresh_token
        return api

    yield factory
    for session in sessions:
        await session.close()


@pytest.fixture
async def api(make_api) -> Api:
    """A hub running only the http plugin, with an owner signed in."""
    return await make_api()
