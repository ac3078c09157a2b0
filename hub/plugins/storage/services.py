"""The services storage offers other plugins and the web API: ``storage.history``, ``storage.status_history``,
``storage.purge``, ``storage.fold``, ``storage.commands``, ``storage.command``, ``storage.fleet``.  The data shapes here are a contract (the web API builds on them)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import voluptuous as vol
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import ServiceRegistry
from hub.core.commands import STATUSES

from . import queries, restore, rollups
from .commands import CommandStore
from .database import unavailable_as_error
from .retention import Retention

DOMAIN = "storage"
MAX_POINTS = 5000


def _finite(value: Any) -> float:
    number = vol.Coerce(float)(value)
    if not math.isfinite(number):
        raise vol.Invalid("expected a finite number of epoch seconds")
    return number


def _window(data: dict[str, Any]) -> dict[str, Any]:
    start, end = data.get("start"), data.get("end")
    if start is not None and end is not None and end <= start:
        raise vol.Invalid("end must be after start", path=["end"])
    return data


HISTORY_SCHEMA = vol.Schema(
    vol.All(
        {
            vol.Required("node_id"): vol.All(str, vol.Length(min=1)),
            vol.Required("key"): vol.All(
                str, vol.Length(min=1, max=255), vol.Match(r'^[^"]*$', msg="a key cannot contain double quotes")
            ),
            vol.Required("start"): _finite,
            vol.Required("end"): _finite,
            vol.Optional("points", default=500): vol.All(vol.Coerce(int), vol.Range(min=1, max=MAX_POINTS)),
            vol.Optional("resolution", default="auto"): vol.In(queries.RESOLUTIONS),
        },
        _window,
    )
)
"""``storage.history``: {node_id, key, start, end, points=500, resolution=auto} ->
{node_id, key, start, end, resolution, bucket_seconds, buckets: [{t, min, avg, max, count}]} (empty buckets
left out; ``resolution``: raw, 1m or 1h, what answered, see :mod:`.queries`)."""

STATUS_HISTORY_SCHEMA = vol.Schema(
    vol.All(
        {
            vol.Required("node_id"): vol.All(str, vol.Length(min=1)),
            vol.Optional("start"): vol.Any(None, _finite),
            vol.Optional("end"): vol.Any(None, _finite),
            vol.Optional("limit", default=100): vol.All(vol.Coerce(int), vol.Range(min=1, max=10_000)),
        },
        _window,
    )
)
"""``storage.status_history``: {node_id, start?, end?, limit=100} -> [{ts, old, new, reason}], newest first."""

PURGE_SCHEMA = vol.Schema({vol.Optional("keep_days"): vol.All(vol.Coerce(float), vol.Range(min=0, min_included=False))})
"""``storage.purge``: {keep_days?} -> {deleted, telemetry, status_history} (row counts), and on PostgreSQL
``partitions_dropped`` (whole partitions, whose rows are not counted)."""


FOLD_SCHEMA = vol.Schema(
    {vol.Optional("timeout", default=30.0): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=600))}
)
"""``storage.fold``: {timeout=30} -> {deltas, minutes, hours}: fold now, so every row committed before the call is
in the rollups (PostgreSQL; on SQLite, which has none, {deltas: 0, minutes: 0, hours: 0})."""


COMMANDS_SCHEMA = vol.Schema(
    {
        vol.Optional("node_id"): vol.All(str, vol.Length(min=1, max=100)),
        vol.Optional("status"): vol.In(STATUSES),
        vol.Optional("before"): _finite,
        vol.Optional("limit", default=100): vol.All(vol.Coerce(int), vol.Range(min=1, max=1000)),
    }
)
"""``storage.commands``: {node_id?, status?, before?, limit=100} -> [command], newest first
(the shape of ``Command.as_dict``; page with ``before`` = the last one's ``created``)."""

COMMAND_SCHEMA = vol.Schema({vol.Required("id"): vol.All(str, vol.Length(min=1, max=64))})
"""``storage.command``: {id} -> command or None."""

FLEET_SCHEMA = vol.Schema({})
"""``storage.fleet``: {} -> [node], every node as the database holds it (``Node.as_dict`` with entities, each
entity's state from the node's newest reading): what a cache reloads from the source of truth."""


def register(
    services: ServiceRegistry,
    engine: AsyncEngine,
    retention: Retention,
    commands: CommandStore,
    seal_rollups: Callable[[], Awaitable[None]],
) -> list[Callable[[], None]]:
    """Register the storage services; returns their unregister functions.

    A database that cannot be reached makes a call raise :class:`~hub.StorageUnavailable`.
    """

    async def history(data: dict[str, Any]) -> dict[str, Any]:
        """Downsampled readings of one entity: min/avg/max/count per time bucket, computed in SQL."""
        with unavailable_as_error("storage.history"):
            return await queries.history(
                engine, data["node_id"], data["key"], data["start"], data["end"], data["points"], data["resolution"]
            )

    async def status_history(data: dict[str, Any]) -> list[dict[str, Any]]:
        """A node's status changes, newest first."""
        with unavailable_as_error("storage.status_history"):
            return await queries.status_changes(
                engine, data["node_id"], data.get("start"), data.get("end"), data["limit"]
            )

    async def purge(data: dict[str, Any]) -> dict[str, int]:
        """Delete telemetry and status history older than keep_days now; returns the rows deleted."""
        with unavailable_as_error("storage.purge"):
            return await retention.purge(data.get("keep_days"))

    async def fold_now(data: dict[str, Any]) -> dict[str, Any]:
        """Bring the rollups up to date now (tests, benchmarks, an operator who cannot wait rollup_interval)."""
        if engine.dialect.name != "postgresql":
            return {"deltas": 0, "minutes": 0, "hours": 0}
        with unavailable_as_error("storage.fold"):
            await seal_rollups()  # this process's writer holds its latest deltas in memory (rollup_epochs)
            result = await rollups.wait_folded(engine, data["timeout"])
        return {"deltas": result.deltas, "minutes": result.minutes, "hours": result.hours}

    async def list_commands(data: dict[str, Any]) -> list[dict[str, Any]]:
        """Stored commands, newest first."""
        with unavailable_as_error("storage.commands"):
            return await commands.query(**data)

    async def get_command(data: dict[str, Any]) -> dict[str, Any] | None:
        """One stored command, or None."""
        with unavailable_as_error("storage.command"):
            return await commands.get(data["id"])

    async def fleet(data: dict[str, Any]) -> list[dict[str, Any]]:
        """Every node with its entities and latest states, read from the database (the source of truth).

        For a process whose registry may have missed changes other processes made (the RabbitMQ event fan-out
        after a reconnection): the same three queries as the restore at start."""
        with unavailable_as_error("storage.fleet"):
            restored = await restore.load(engine)
        return [node.as_dict() for node in restored.nodes]

    return [
        services.register(DOMAIN, "history", history, HISTORY_SCHEMA),
        services.register(DOMAIN, "status_history", status_history, STATUS_HISTORY_SCHEMA),
        services.register(DOMAIN, "purge", purge, PURGE_SCHEMA),
        services.register(DOMAIN, "fold", fold_now, FOLD_SCHEMA),
        services.register(DOMAIN, "commands", list_commands, COMMANDS_SCHEMA),
        services.register(DOMAIN, "command", get_command, COMMAND_SCHEMA),
        services.register(DOMAIN, "fleet", fleet, FLEET_SCHEMA),
    ]
