"""Fixtures for storage tests: the same tests run against a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import STORAGE, Store

from hub.core.hub import Hub
from hub.testing import FakeClock


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL of each dialect: a SQLite file in tmp_path, or a scratch PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("hub_postgres_url")


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    store = Store(db_url)
    yield store
    await store.engine.dispose()


StorageHub = Callable[..., Awaitable[Hub]]


@pytest.fixture
def storage_hub(db_url: str, hub_factory, hub_clock: FakeClock) -> StorageHub:
    """``await storage_hub(batch_size=…, …)``: a started hub with only storage, on ``db_url``, fake clock.

    ``db_url`` comes first, so the database outlives the hub: its stop still writes (the rollup epoch).
    """

    async def factory(role: str | None = None, start: bool = True, **storage: Any) -> Hub:
        extra = {"role": role} if role is not None else {}
        return await hub_factory(
            {"storage": {"db_url": db_url, **storage}}, builtins=STORAGE, clock=hub_clock, start=start, **extra
        )

    return factory
