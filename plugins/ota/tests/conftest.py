"""Fixtures for the ota plugin's HTTP tests: a started hub (storage on SQLite or PostgreSQL, http, ota)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import hub_ota.plugin
import pytest
from ota_testing import STORAGE_HTTP, OtaClient

from hub.testing import PrivateMosquitto, create_user_and_token


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that uses it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("hub_postgres_url")


@pytest.fixture
async def make_client(
    db_url: str, hub_factory: Any, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[OtaClient]]]:
    """Factory: ``await make_client(ota={…}, clock=…)`` → a started hub with storage, http and ota, and an owner's
    token. The database comes first, so it is dropped only after the hubs stopped."""
    sessions: list[aiohttp.ClientSession] = []

    async def factory(ota: dict[str, Any] | None = None, *, clock: Any = None, **config: Any) -> OtaClient:
        full = {
            "hub": {"data_dir": str(tmp_path / "data")},
            "storage": {"db_url": db_url},
            "http": {"port": 0},
            "ota": ota or {},
            **config,
        }
        hub = await hub_factory(full, builtins=STORAGE_HTTP, plugins=[(hub_ota.plugin, "ota")], clock=clock)
        assert "ota" in hub.plugins.info, hub.plugins.failed
        user = await create_user_and_token(hub)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return OtaClient(hub, session, user.token)

    yield factory
    for session in sessions:
        await session.close()


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[OtaClient]]) -> OtaClient:
    return await make_client()


@pytest.fixture
async def rollout_setup(db_url: str, hub_factory: Any, tmp_path: Path, hub_free_port: int) -> AsyncIterator[Any]:
    """A hub with every plugin, a private Mosquitto, and room for simulated nodes (see ota_fleet)."""
    from ota_fleet import RolloutSetup

    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        setup = RolloutSetup(broker, hub_factory, db_url, tmp_path / "data", hub_free_port)
        yield setup
        await setup.close()
