"""A redelivered message is stored once, through this plugin into each real database, with or without a time
of its own: storage checks a message stamped on receipt by its key alone, since its redelivery is stamped later."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import hub_esp32_node.plugin
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from hub import Hub
from hub.testing import FakeClock

MAC = "24:6f:28:aa:bb:01"
NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("hub_postgres_url")


def send(hub: Hub, message: dict[str, Any]) -> None:
    assert hub.messages.dispatch(f"devices/{MAC}/data", orjson.dumps(message), False) == 1


async def test_a_redelivery_is_stored_once_with_or_without_the_nodes_own_time(
    db_url: str, hub_factory: Any, hub_clock: FakeClock
) -> None:
    """``db_url`` first: the database outlives the hub, whose stop still writes."""
    hub_clock.now = NOW
    hub = await hub_factory(
        {"storage": {"db_url": db_url}},
        builtins=("hub.plugins.storage",),
        plugins=[(hub_esp32_node.plugin, "esp32_node")],
        clock=hub_clock,
    )
    stamped = {"seq": 1, "temperature": 20.5}  # no time of its own: stored at its receive time
    timed = {"seq": 2, "temperature": 21.5, "ts": NOW - 30}
    for message in (stamped, timed, {"temperature": 22.5}):  # the last: no key, every copy stored
        send(hub, message)
    await asyncio.wait_for(hub.durability.wait_committed(), 10)
    hub_clock.now = NOW + 7  # the broker redelivers a few seconds later (the hub restarted, say)
    for message in (stamped, timed, {"temperature": 22.5}, stamped, timed):
        send(hub, message)
    await asyncio.wait_for(hub.durability.wait_committed(), 10)

    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT ts, dedupe IS NOT NULL FROM telemetry ORDER BY ts, 2"))).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [(NOW - 30, True), (NOW, False), (NOW, True), (NOW + 7, False)]
    assert hub.metrics.value("storage_duplicates") == 4
