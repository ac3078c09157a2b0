"""Metrics: one Prometheus registry per hub, shared by the core and every plugin.

Plugins ask for a metric by name and get the same object every time, so two
plugins (or two hubs in one test process) never collide on registration.
The ``http`` plugin serves :attr:`Metrics.registry` at ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Get-or-create access to this hub's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}
        self.rejection_examples: dict[str, dict[str, str | float]] = {}
        """The last rejected message of each reason (``{"ts", "topic", "detail"}``), kept by
        :class:`~hub.core.rejections.Rejections` so the system page can show what a reason looks like."""

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        """The counter ``hub_<name>_total``."""
        return self._get(Counter, name, documentation, labelnames)  # type: ignore[return-value]

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
        """The gauge ``hub_<name>``."""
        return self._get(Gauge, name, documentation, labelnames)  # type: ignore[return-value]

    def histogram(
        self, name: str, documentation: str, labelnames: Sequence[str] = (), buckets: Sequence[float] | None = None
    ) -> Histogram:
        """The histogram ``hub_<name>``."""
        extra = {"buckets": buckets} if buckets is not None else {}
        return self._get(Histogram, name, documentation, labelnames, **extra)  # type: ignore[return-value]

    def _get(self, kind: type, name: str, documentation: str, labelnames: Sequence[str], **extra: object):
        metric = self._metrics.get(name)
        if metric is None:
            metric = kind(name, documentation, labelnames, namespace="hub", registry=self.registry, **extra)
            self._metrics[name] = metric
        elif not isinstance(metric, kind):
            raise TypeError(f"metric {name!r} already exists as a {type(metric).__name__}")
        return metric

    def value(self, name: str, **labels: str) -> float:
        """Current value of a counter or gauge sample; 0.0 when it was never set.

        Collects only that metric: the registry's own lookup collects every metric of the hub, which a caller
        polling one counter (the ingest benchmark, 50 times a second) paid for in the hub's CPU.
        """
        metric = self._metrics.get(name)
        if metric is None:
            return 0.0
        wanted = (f"hub_{name}_total", f"hub_{name}")
        for family in metric.collect():
            for sample in family.samples:
                if sample.name in wanted and sample.labels == labels:
                    return sample.value
        return 0.0
