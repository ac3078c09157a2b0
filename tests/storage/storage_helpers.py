"""Helpers for storage tests: constants, a fake clock, direct database reads, and registry drivers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from hub.core.hub import Hub
from hub.plugins.storage.engine import create_engine

STORAGE = ("hub.plugins.storage",)
T0 = 1_700_000_000.0
NODE_A = "aa:bb:cc:dd:ee:01"
NODE_B = "aa:bb:cc:dd:ee:02"


# PostgreSQL: what the rollups must equal: the same aggregates computed from the raw rows (numbers and booleans count).
_RAW_AGGREGATES = """
SELECT t.node_ref, e.key, floor(t.ts / {width}) * {width} AS bucket,
       min(v), max(v), sum(v), count(v)
FROM telemetry t CROSS JOIN LATERAL jsonb_each(t.states) e
CROSS JOIN LATERAL (SELECT CASE jsonb_typeof(e.value) WHEN 'number' THEN e.value::float8
                                WHEN 'boolean' THEN e.value::boolean::int::float8 END AS v) AS x
WHERE v IS NOT NULL AND {where}
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def asyncpg_dsn(url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy PostgreSQL URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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


def report(
    hub: Hub, node_id: str, states: dict[str, Any], ts: float, dedupe: int | None = None, *, stamped: bool = False
) -> None:
    """Do what a contract plugin does for one message: register node and entities, report the states.

    ``stamped``: the message carried no time of its own, so ``ts`` is its receive time (as the plugin passes it).
    """
    registry = hub.registry
    node = registry.get_or_register(node_id)
    for key in states:
        registry.ensure_entity(node, key)
    registry.report_states(node, states, ts, dedupe=dedupe, received=ts if stamped else None)


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


async def assert_rollups_match_raw(store: Store, where: str = "TRUE") -> None:
    """Both rollups hold exactly the aggregates of the raw rows (those matching ``where``, SQL on ``t``)."""
    for table, width in (("rollup_1m", 60), ("rollup_1h", 3600)):
        raw = await store.all(_RAW_AGGREGATES.format(width=width, where=where))
        rolled = await store.all(
            f"SELECT node_ref, key, bucket, min_v, max_v, sum_v, n FROM {table} ORDER BY 1, 2, 3"  # noqa: S608
        )
        assert len(rolled) == len(raw), table
        for got, want in zip(rolled, raw, strict=True):
            assert got[:3] == want[:3] and got[3:5] == want[3:5] and got[6] == want[6], (table, got, want)
            assert got[5] == pytest.approx(want[5]), (table, got, want)
