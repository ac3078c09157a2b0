"""Helpers for storage tests: constants, a fake clock, direct database reads, and registry drivers."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from hub.core.hub import Hub
from hub.plugins.storage.engine import create_engine

STORAGE = ("hub.plugins.storage",)
T0 = 1_700_000_000.0
NODE_A = "aa:bb:cc:dd:ee:01"
NODE_B = "aa:bb:cc:dd:ee:02"


class Store:
    """Reads the database directly, through its own engine, to check what the hub committed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(make_url(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def all(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(sa.text(sql), params)).all()]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.text(sql), params)).scalar()

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.text(sql), params)


def report(hub: Hub, node_id: str, states: dict[str, Any], ts: float, dedupe: int | None = None) -> None:
    """Do what a contract plugin does for one message: register node and entities, report the states."""
    registry = hub.registry
    node = registry.get_or_register(node_id)
    for key in states:
        registry.ensure_entity(node, key)
    registry.report_states(node, states, ts, dedupe=dedupe)


async def committed(hub: Hub, timeout: float = 10.0) -> None:
    """Wait until everything handed to storage so far is committed."""
    await asyncio.wait_for(hub.durability.wait_committed(), timeout)
