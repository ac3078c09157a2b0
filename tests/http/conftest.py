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

from hub.core.const import DATA_HTTP_URL
from hub.plugins.http.auth.manager import AuthManager
from hub.plugins.http.auth.store import AuthStore
from hub.testing.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())  # real time, so tokens and logs look sane


@pytest.fixture
async def make_api(hub_factory, clock) -> AsyncIterator:
    """Factory: ``await make_api(http_config, builtins=…, plugins=…, config=…, owner=True)`` → Api."""
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
        hub = await hub_factory(full, builtins=builtins, plugins=plugins, clock=clock, start=False)
        if owner:  # created before start, as `hub user create` would, so no onboarding link is made
            await AuthManager(AuthStore.in_dir(hub.data_dir), clock).create_user(OWNER, OWNER_PASSWORD)
        await hub.async_start()
        session = aiohttp.ClientSession()
        sessions.append(session)
        api = Api(hub, hub.data[DATA_HTTP_URL], session, clock)
        if owner:
            auth = api.server.auth
            tokens = auth.start_session(auth.store.user_by_name(OWNER))
            api.token, api.refresh_token = tokens["access_token"], tokens["refresh_token"]
        return api

    yield factory
    for session in sessions:
        await session.close()


@pytest.fixture
async def api(make_api) -> Api:
    """A hub running only the http plugin, with an owner signed in."""
    return await make_api()
