"""Persisting commands: every status change is written, pending commands come back at start, history is queryable.

Commands are few (an operator's clicks, a rollout's steps), so they have their
own small writer instead of riding the telemetry batch: the latest state of each
changed command is upserted, grouped into one transaction per flush, and a
failed write is kept and tried again.  Reads first flush what is queued, so an
API client that just created a command finds it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import EVENT_COMMAND_UPDATED, Command, Event, EventBus, RateLimitedLogger
from hub.core.commands import PENDING

from .schema import commands

_LOGGER = logging.getLogger(__name__)

RETRY_DELAY = 2.0
_UPDATED_COLUMNS = ("status", "updated", "detail", "history", "priority", "params")


def _row(command: dict[str, Any]) -> dict[str, Any]:
    return {column.name: command[column.name] for column in commands.columns}


class CommandStore:
    """See the module docstring."""

    def __init__(self, engine: AsyncEngine, bus: EventBus) -> None:
        self._engine = engine
        self._queued: dict[str, dict[str, Any]] = {}
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._log = RateLimitedLogger(_LOGGER)
        self._stop_listening = bus.listen(EVENT_COMMAND_UPDATED, self._on_update)
        insert = postgres_insert if engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(commands)
        self._upsert = statement.on_conflict_do_update(
            index_elements=[commands.c.id], set_={name: statement.excluded[name] for name in _UPDATED_COLUMNS}
        )

    def start(self) -> None:
        """Begin writing in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="storage-commands")

    async def close(self) -> None:
        """Stop listening and write what is left."""
        self._stop_listening()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.flush()
        except SQLAlchemyError as err:
            _LOGGER.error("Could not store %d command update(s) at shutdown: %s", len(self._queued), err)

    def _on_update(self, event: Event) -> None:
        if "origin" in event.data:
            return  # another process's command, fanned out: that process writes it
        command = event.data["command"]
        self._queued[command["id"]] = command
        self._kick.set()

    async def _run(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                await self.flush()
            except SQLAlchemyError as err:
                reason = getattr(err, "orig", None) or err  # the driver's words, not every bound row
                self._log.warning("write", "Could not store command updates, retrying: %s", reason)
                self._kick.set()
                await asyncio.sleep(RETRY_DELAY)

    async def flush(self) -> None:
        """Write every queued command update in one transaction (kept for a retry if it fails)."""
        async with self._lock:
            if not self._queued:
                return
            batch, self._queued = self._queued, {}
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(self._upsert, [_row(command) for command in batch.values()])
            except BaseException:
                self._queued = {**batch, **self._queued}  # newer updates win
                raise

    async def load_pending(self) -> list[Command]:
        """The commands that had no verdict when the hub stopped."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(commands).where(commands.c.status.in_(sorted(PENDING))))).mappings()
            return [Command.from_dict(dict(row)) for row in rows]

    async def get(self, command_id: str) -> dict[str, Any] | None:
        """One command as :meth:`Command.as_dict` shapes it, or None."""
        await self.flush()
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(commands).where(commands.c.id == command_id))).mappings().first()
        return None if row is None else Command.from_dict(dict(row)).as_dict()

    async def query(
        self, *, node_id: str | None = None, status: str | None = None, before: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Commands newest first, filtered by node, status and creation time."""
        await self.flush()
        select = sa.select(commands).order_by(commands.c.created.desc(), commands.c.id).limit(limit)
        if node_id is not None:
            select = select.where(commands.c.node_id == node_id)
        if status is not None:
            select = select.where(commands.c.status == status)
        if before is not None:
            select = select.where(commands.c.created < before)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select)).mappings().all()
        return [Command.from_dict(dict(row)).as_dict() for row in rows]
