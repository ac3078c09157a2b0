"""``GET /api/system``: how the hub is doing, for the system page (``/api/health`` is :mod:`.api_health`).

Figures come from the hub's Prometheus registry (the same numbers /metrics
serves) plus the registry and plugin manager.  Rates are per second over the
last minute, from totals sampled every few seconds by :class:`SystemStats`,
which also keeps the last hour of those samples as per-interval rates
(``series``) for the system page's charts: a few columns of 720 numbers, so
the charts need no database and show the hour before the page was opened.
The well-known figures (``messages``, ``storage``, ``broker``) are picked
from the metric names listed below; ``metrics`` carries every ``hub_``
family, so a plugin's own metrics show up without changes here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web
from yarl import URL

from hub import DATA_BROKER_URL, Hub, __version__
from hub.web import Route, json_response, operation

from .metrics import summarize
from .middleware import SERVER_KEY
from .openapi import ref

if TYPE_CHECKING:
    from .websocket import WebSocketHub

SAMPLE_INTERVAL = 5.0
RATE_WINDOW = 60.0
SERIES_WINDOW = 3600.0
SERIES = ("t", "received_per_second", "rejected_per_second", "rows_per_second", "batch_seconds")
"""The columns of ``series``: time, three counter rates and the mean batch latency of each interval."""

# The metric families the summary reads (first one present wins; a future transport adds its name here).
MESSAGES_RECEIVED = ("hub_mqtt_messages_received",)
MESSAGES_REJECTED = ("hub_messages_rejected",)
ROWS_STORED = ("hub_stored_rows",)
BATCH_SECONDS = ("hub_batch_seconds",)
QUEUE_DEPTH = ("hub_write_queue_depth",)
BROKER_CONNECTED = ("hub_mqtt_connected",)


class SystemStats:
    """Samples counter totals every few seconds so /api/system can report rates."""

    def __init__(self, hub: Hub, websockets: WebSocketHub) -> None:
        self.hub = hub
        self.websockets = websockets
        self.started = hub.clock()
        self._samples: deque[tuple[float, dict[str, float]]] = deque()
        self._series: deque[tuple[float, float | None, float | None, float | None, float | None]] = deque()
        self._previous: tuple[float, dict[str, float]] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin sampling (stopped by :meth:`stop` or with the hub)."""
        self.sample()
        self._task = self.hub.create_task(self._run(), "http:system-stats")

    def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL)
            self.sample()

    def sample(self, families: dict[str, dict[str, Any]] | None = None) -> None:
        """Record the counters' current totals (keeping one window's worth)."""
        families = families if families is not None else summarize(self.hub.metrics.registry)
        now = self.hub.clock()
        totals = {name: family["value"] for name, family in families.items() if family["type"] == "counter"}
        self._samples.append((now, totals))
        while len(self._samples) > 2 and self._samples[0][0] < now - RATE_WINDOW:
            self._samples.popleft()
        self._extend_series(now, families)

    def _extend_series(self, now: float, families: dict[str, dict[str, Any]]) -> None:
        """One point of ``series``: each rate and the mean batch latency since the previous sample."""
        totals = {name: family.get("value", 0.0) for name, family in families.items()}
        for name in BATCH_SECONDS:
            if name in families:
                totals[f"{name}:count"], totals[f"{name}:sum"] = families[name]["count"], families[name]["sum"]
        previous, self._previous = self._previous, (now, totals)
        if previous is None or now <= previous[0]:
            return
        then, before = previous
        elapsed = now - then

        def rate(names: tuple[str, ...]) -> float | None:
            name = next((n for n in names if n in totals), None)
            return None if name is None else max(0.0, (totals[name] - before.get(name, 0.0)) / elapsed)

        batch = next((n for n in BATCH_SECONDS if f"{n}:count" in totals), None)
        latency = None
        if batch is not None:
            batches = totals[f"{batch}:count"] - before.get(f"{batch}:count", 0.0)
            if batches > 0:
                latency = (totals[f"{batch}:sum"] - before.get(f"{batch}:sum", 0.0)) / batches
        point = (now, rate(MESSAGES_RECEIVED), rate(MESSAGES_REJECTED), rate(ROWS_STORED), latency)
        self._series.append(point)
        while self._series and self._series[0][0] < now - SERIES_WINDOW:
            self._series.popleft()

    def series(self) -> dict[str, Any]:
        """The last hour of samples as columns (``t`` epoch seconds; rates per second; latency in seconds)."""
        columns = list(zip(*self._series, strict=True)) if self._series else [()] * len(SERIES)
        return {"interval": SAMPLE_INTERVAL, **{name: list(column) for name, column in zip(SERIES, columns)}}

    def rates(self) -> dict[str, float]:
        """Per-second rate of every counter over the sampled window (empty until two samples exist)."""
        if len(self._samples) < 2:
            return {}
        (t0, first), (t1, last) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return {}
        return {name: max(0.0, (value - first.get(name, 0.0)) / (t1 - t0)) for name, value in last.items()}

    def snapshot(self) -> dict[str, Any]:
        """The body of /api/system."""
        hub = self.hub
        families = summarize(hub.metrics.registry)
        rates = self.rates()

        def pick(names: tuple[str, ...]) -> tuple[str | None, dict[str, Any] | None]:
            for name in names:
                if name in families:
                    return name, families[name]
            return None, None

        received_name, received = pick(MESSAGES_RECEIVED)
        _, rejected = pick(MESSAGES_REJECTED)
        rows_name, rows = pick(ROWS_STORED)
        _, batch = pick(BATCH_SECONDS)
        _, queue = pick(QUEUE_DEPTH)
        _, connected = pick(BROKER_CONNECTED)
        broker_url = hub.data.get(DATA_BROKER_URL)
        return {
            "hub": {
                "name": hub.config["hub"]["name"],
                "version": __version__,
                "state": hub.state.value,
                "uptime_seconds": max(0.0, hub.clock() - self.started),
            },
            "nodes": {
                "total": len(hub.registry),
                "by_status": hub.registry.count_by_status(),
                "limits": asdict(hub.registry.limits),
            },
            "messages": {
                "received_total": received["value"] if received else None,
                "received_per_second": rates.get(received_name) if received_name else None,
                "rejected_total": rejected["value"] if rejected else 0.0,
                "rejected_by_reason": _by_label(rejected, "reason"),
                "rejected_examples": dict(hub.metrics.rejection_examples),
            },
            "storage": {
                "loaded": hub.services.has("storage", "history"),
                "rows_total": rows["value"] if rows else None,
                "rows_per_second": rates.get(rows_name) if rows_name else None,
                "queue_depth": queue["value"] if queue else None,
                "batch_seconds": {key: batch[key] for key in ("count", "avg", "p50", "p99")} if batch else None,
            },
            "broker": {
                "url": str(URL(broker_url).with_user(None)) if broker_url else None,  # no user name, no password
                "connected": bool(connected["value"]) if connected else None,
            },
            "series": self.series(),
            "websocket": self.websockets.stats(),
            "events": {"listener_errors": dict(hub.bus.errors), "dropped": dict(hub.bus.dropped)},
            "loop": {
                "lag_max_seconds": hub.loop_lag.max_lag,
                "lag_last_seconds": hub.metrics.value("loop_lag_last_seconds"),
                "busy_max_seconds": hub.loop_lag.max_busy,
            },
            "plugins": {
                "loaded": [
                    {
                        "name": info.name,
                        "version": info.version,
                        "source": info.source,
                        "hooks": info.hooks,
                        "requires": info.requires,
                    }
                    for info in hub.plugins.info.values()
                ],
                "failed": dict(hub.plugins.failed),
            },
            "metrics": {
                name: {**family, **({"rate": rates[name]} if name in rates else {})}
                for name, family in families.items()
            },
        }


def _by_label(family: dict[str, Any] | None, label: str) -> dict[str, float]:
    if not family:
        return {}
    result: dict[str, float] = {}
    for sample in family.get("samples", ()):
        name = sample["labels"].get(label, "")
        result[name] = result.get(name, 0.0) + sample["value"]
    return result


async def system(request: web.Request) -> web.Response:
    """Message rates, rejects by reason, storage, broker, WebSocket clients, loop lag, plugins, every hub metric."""
    return json_response(request.app[SERVER_KEY].stats.snapshot())


ROUTES = [
    Route("GET", "/api/system", system, doc=operation("System statistics", tag="meta", ok=ref("System"))),
]
