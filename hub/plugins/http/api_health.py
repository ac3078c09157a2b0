"""``GET /api/health`` (public): is the hub running, and can it reach its database?

For monitors and load balancers.  The answer is 200 ``{"status": "ok"}`` only
while the hub runs *and* its database (when a storage plugin provides one)
answers ``SELECT 1`` within :data:`PROBE_TIMEOUT`.  With the database
unreachable the hub keeps running but stores nothing and acknowledges no
message, so the answer is 503 ``{"status": "degraded", "checks": {"database":
"unavailable"}}``: a monitor alerts on the status code alone.  A hub starting
or stopping answers 503 with its state.  No other details: the endpoint is public.

The probe result is reused for :data:`PROBE_INTERVAL` seconds and concurrent
callers share one probe, so polling health cannot load the database.
"""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa
from aiohttp import web

from hub import DATA_DATABASE, Hub, HubState

from .middleware import SERVER_KEY
from .openapi import operation, ref
from .routes import Route
from .validation import json_response

PROBE_TIMEOUT = 2.0
PROBE_INTERVAL = 2.0


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


async def health(request: web.Request) -> web.Response:
    """200 ``ok``; 503 ``degraded`` when the database is unreachable, 503 with the state when not running."""
    server = request.app[SERVER_KEY]
    hub = server.hub
    if hub.state is not HubState.RUNNING:
        return json_response({"status": hub.state.value}, status=503)
    database = await server.database_probe.status()
    if database == "unavailable":
        return json_response({"status": "degraded", "checks": {"database": database}}, status=503)
    return json_response({"status": "ok", "checks": {"database": database or "none"}})


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
