"""``GET /metrics`` (Prometheus text format, behind auth) and reading the hub's metrics back as plain data.

/metrics needs a bearer token like every other endpoint: create a long-lived
token (``hub token create --name prometheus``) and give it to Prometheus as
``authorization: {credentials: <token>}`` (or ``bearer_token``) in the scrape
config.  :func:`summarize` turns the same registry into JSON for
``/api/system``, so the system page and Prometheus always agree.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from hub.web import Route, operation

from .middleware import SERVER_KEY

PREFIX = "hub_"


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Estimate a quantile from cumulative histogram buckets, as Prometheus' histogram_quantile does."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def summarize(registry: CollectorRegistry) -> dict[str, dict[str, Any]]:
    """Every ``hub_`` metric family as plain data.

    Counters and gauges: ``{"type", "value"}`` (summed over labels) plus ``"samples": [{"labels", "value"}]``
    when labelled; histograms: ``{"type", "count", "sum", "avg", "p50", "p99"}`` over all labels.
    """
    families: dict[str, dict[str, Any]] = {}
    for family in registry.collect():
        if not family.name.startswith(PREFIX):
            continue
        if family.type in ("counter", "gauge"):
            suffix = "_total" if family.type == "counter" else ""
            samples = [s for s in family.samples if s.name == family.name + suffix]
            entry: dict[str, Any] = {"type": family.type, "value": sum(s.value for s in samples)}
            if any(s.labels for s in samples):
                entry["samples"] = [{"labels": s.labels, "value": s.value} for s in samples]
            families[family.name] = entry
        elif family.type == "histogram":
            count = sum(s.value for s in family.samples if s.name == family.name + "_count")
            total = sum(s.value for s in family.samples if s.name == family.name + "_sum")
            merged: dict[float, float] = {}
            for sample in family.samples:
                if sample.name == family.name + "_bucket":
                    bound = float(sample.labels["le"])
                    merged[bound] = merged.get(bound, 0.0) + sample.value
            buckets = sorted(merged.items())
            families[family.name] = {
                "type": "histogram",
                "count": count,
                "sum": total,
                "avg": total / count if count else None,
                "p50": _quantile(0.5, buckets),
                "p99": _quantile(0.99, buckets),
            }
    return families


async def metrics_handler(request: web.Request) -> web.Response:
    """The hub's Prometheus registry in the text exposition format."""
    hub = request.app[SERVER_KEY].hub
    body = generate_latest(hub.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


ROUTES = [
    Route(
        "GET",
        "/metrics",
        metrics_handler,
        doc=operation(
            "Prometheus metrics",
            tag="meta",
            ok={"type": "string"},
            media="text/plain",
            description="Needs a bearer token like the rest of the API: give Prometheus a long-lived token.",
        ),
    ),
]
