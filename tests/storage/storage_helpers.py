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


class TcpProxy:
    """A loopback TCP relay to a server: :meth:`cut` makes the server vanish for whoever connects through it."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def cut(self) -> None:
        """Stop listening and abort every relayed connection (what a crashed server looks like)."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, upstream_writer]
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
