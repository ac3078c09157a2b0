"""``GET /api/health`` (public): is the hub running, and can it reach its database?

For monitors and load balancers.  The answer is 200 ``{"status": "ok"}`` only
while the hub runs *and* its database (when a storage plugin provides one)
answers ``SELECT 1`` within :data:`PROBE_TIMEOUT`.  With the database
unreachable the hub keeps running but stores nothing and acknowledges no
message, so the answer is 503 ``{"status": "degraded", "checks": {"database":
"unavailable"}}``: a monitor alerts on the status code alone.  A hub starting
or stopping answers 503 with its state.  No other details: the endpoint is public.

A database that answers but refuses the writes (a full disk under SQLite, a read-only
PostgreSQL) is just as bad for the promise "acknowledged means stored": while storage's
latest batch write failed and is being retried (the ``hub_storage_failing`` gauge), the
answer is 503 ``degraded`` with ``"storage": "failing"``.

The probe result is reused for :data:`PROBE_INTERVAL` seconds and concurrent
callers share one probe, so polling health cannot load the database.

:class:`HealthWatch` pushes the same answer to the dashboard: while a WebSocket client
is connected it evaluates the checks every :data:`PROBE_INTERVAL` seconds and fires
``health_changed`` (``{"status", "checks"}``) on the bus when the answer changes, which
clients receive with ``subscribe_events`` like any event (the dashboard shows a banner).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from hub import DATA_DATABASE, EventType, Hub, HubState
from hub.web import Route, json_response, operation

from .middleware import SERVER_KEY
from .openapi import ref

PROBE_TIMEOUT = 2.0
PROBE_INTERVAL = 2.0
EVENT_HEALTH_CHANGED: EventType[dict] = EventType("health_changed")
"""Fired by :class:`HealthWatch` when ``/api/health``'s answer changes: ``{"status", "checks"}``."""


class DatabaseProbe:
    """Whether the hub's database answers; see the module docstring."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._checked = -PROBE_INTERVAL
        self._result: str | None = None
        self._running: asyncio.Future[str | None] | None = None

    async def status(self) -> str | None:
        """``"ok"``, ``"unavailable"``, or None when no storage plugin provides a database."""
        if time.monotonic() - self._checked < PROBE_INTERVAL:
            return self._result
        if self._running is None:
            self._running = asyncio.ensure_future(self._probe())
        running = self._running
        try:
            return await asyncio.shield(running)
        finally:
            if running.done() and self._running is running:
                self._running = None

    async def _probe(self) -> str | None:
        database = self._hub.data.get(DATA_DATABASE)
        if database is None:
            result = None
        else:
            try:
                async with asyncio.timeout(PROBE_TIMEOUT), database.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
                result = "ok"
            except Exception:  # noqa: BLE001 - whatever stops SELECT 1 (refused, timed out, broken) is "unavailable"
                result = "unavailable"
        self._result, self._checked = result, time.monotonic()
        return result


class HealthWatch:
    """Fires :data:`EVENT_HEALTH_CHANGED` when the health answer changes, while someone is connected to hear it."""

    def __init__(self, hub: Hub, probe: DatabaseProbe, clients: Callable[[], int]) -> None:
        self._hub = hub
        self._probe = probe
        self._clients = clients
        self._last: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self._hub.create_task(self._run(), "http:health-watch")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            if self._clients():
                await self.evaluate()

    async def evaluate(self) -> dict[str, Any]:
        """The current answer; fired on the bus when it differs from the last one fired."""
        checks = await health_checks(self._hub, self._probe)
        answer = {"status": _status(checks), "checks": checks}
        if answer != self._last:
            if self._last is not None or answer["status"] != "ok":  # the first "ok" is no change worth a banner
                self._hub.bus.fire(EVENT_HEALTH_CHANGED, answer)
            self._last = answer
        return answer


def _status(checks: dict[str, str]) -> str:
    return "degraded" if "unavailable" in checks.values() or "failing" in checks.values() else "ok"


async def health(request: web.Request) -> web.Response:
    """200 ``ok``; 503 ``degraded`` when the database is unreachable, 503 with the state when not running."""
    server = request.app[SERVER_KEY]
    hub = server.hub
    if hub.state is not HubState.RUNNING:
        return json_response({"status": hub.state.value}, status=503)
    checks = await health_checks(server.hub, server.database_probe)
    status = _status(checks)
    return json_response({"status": status, "checks": checks}, status=503 if status == "degraded" else 200)


async def health_checks(hub: Hub, probe: DatabaseProbe) -> dict[str, str]:
    """``{"database": "ok" | "unavailable" | "none"}``, plus ``"storage": "failing"`` while writes fail."""
    database = await probe.status()
    checks = {"database": database or "none"}
    if database != "unavailable" and hub.metrics.value("storage_failing"):
        checks["storage"] = "failing"
    return checks


ROUTES = [
    Route(
        "GET",
        "/api/health",
        health,
        auth=False,
        doc=operation(
            "Is the hub running and its database reachable?",
            tag="meta",
            public=True,
            ok=ref("Health"),
            errors=(503,),
            description="503 with status 'degraded' while the database cannot be reached (the hub stores and "
            "acknowledges nothing then), 503 with the hub's state while it starts or stops.",
        ),
    ),
]
