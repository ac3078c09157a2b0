"""Rejected input: counted by reason, logged rate-limited, never raised into the transport.

Every integration that parses device input shares this so the operator sees
one ``hub_messages_rejected_total{reason=…}`` series and one style of log
line, whatever contract the bad message came in on.
"""

from __future__ import annotations

import logging
import time

from .metrics import Metrics
from .ratelimit import RateLimitedLogger


class Rejections:
    """Counts and logs rejected messages by reason."""

    def __init__(self, metrics: Metrics, logger: logging.Logger) -> None:
        self._counter = metrics.counter("messages_rejected", "Inbound messages rejected, by reason", ["reason"])
        self._children: dict[str, object] = {}
        self._examples = metrics.rejection_examples
        self._log = RateLimitedLogger(logger)

    def reject(self, reason: str, topic: str, detail: str = "") -> None:
        """Count one rejection under ``reason`` and log it (at most once per reason every 10 s)."""
        child = self._children.get(reason)
        if child is None:
            child = self._children[reason] = self._counter.labels(reason)
        child.inc()  # type: ignore[attr-defined]
        self._examples[reason] = {"ts": time.time(), "topic": topic[:200], "detail": detail[:200]}
        self._log.warning(reason, "Rejected message on %r: %s%s", topic, reason, f" ({detail})" if detail else "")
