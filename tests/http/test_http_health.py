"""``/api/health`` tells a monitor when the database is down: 503 ``degraded``, back to 200 ``ok`` when it returns.

Against a private PostgreSQL cluster this test stops and starts itself (never the shared server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from http_helpers import Api

from hub.testing import wait_until
from hub.testing.private_postgres import PrivatePostgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().start()
    yield server
    server.close()


async def test_health_is_degraded_while_the_database_is_down(private_postgres: PrivatePostgres, make_api) -> None:
    api: Api = await make_api(
        builtins=("hub.plugins.storage", "hub.plugins.http"),
        config={"storage": {"db_url": private_postgres.url}},
    )

    async def health() -> tuple[int, dict]:
        return await api.call("GET", "/api/health", auth=False)

    assert await health() == (200, {"status": "ok", "checks": {"database": "ok"}})
    await asyncio.to_thread(private_postgres.stop)
    down = await wait_until(lambda: _when(health, 503), timeout=15, message="health to report the outage")
    assert down == {"status": "degraded", "checks": {"database": "unavailable"}}
    await asyncio.to_thread(private_postgres.resume)
    up = await wait_until(lambda: _when(health, 200), timeout=15, message="health to recover")
    assert up == {"status": "ok", "checks": {"database": "ok"}}


async def _when(health, status: int) -> dict | None:
    answer_status, body = await health()
    return body if answer_status == status else None
