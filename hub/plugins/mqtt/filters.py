"""Which filters the hub subscribes at the broker: a cover of the router's filters in which no two overlap.

Mosquitto (like MQTT 5 allows) sends a message once *per matching
subscription*: subscribed to ``devices/+/data`` and ``devices/#``, the hub
would get every data message twice, and the router would hand each copy to
every matching handler, so twice to each.  So the broker gets a set of filters
in which no two can match the same topic: a filter another one covers is
dropped (``devices/+/data`` under ``devices/#``), two that partly overlap are
merged into the narrowest filter covering both (``a/+/x`` and ``a/b/#`` become
``a/+/#``; what that adds beyond them is counted as unmatched by the router).
The router still matches each message against the plugins' own filters.

The broker keeps subscriptions in the hub's persistent session across
restarts, so filters an earlier run subscribed but this one no longer wants
would keep delivering duplicates.  :class:`SubscriptionLedger` remembers, in
the data directory, what was subscribed per broker and client id, so the first
connection of a run can unsubscribe what is stale (after subscribing the new
cover, so no message falls in between).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from hub import validate_filter

_LOGGER = logging.getLogger(__name__)


def _system_only(a: list[str], b: list[str]) -> bool:
    """Topics beginning with ``$`` (``$SYS/…``) are never matched by a leading wildcard."""
    return a[0].startswith("$") and b[0] in ("+", "#")


def _intersects(a: list[str], b: list[str]) -> bool:
    """Can one topic match both filters?"""
    if _system_only(a, b) or _system_only(b, a):
        return False
    for x, y in zip(a, b):
        if x == "#" or y == "#":
            return True
        if x != "+" and y != "+" and x != y:
            return False
    if len(a) == len(b):
        return True
    longer = a if len(a) > len(b) else b
    return longer[min(len(a), len(b))] == "#"  # "x/#" also matches "x"


def _covers(b: list[str], a: list[str]) -> bool:
    """Does every topic matching ``a`` match ``b``?"""
    if _system_only(a, b):
        return False
    for index, y in enumerate(b):
        if y == "#":
            return True
        if index >= len(a) or a[index] == "#":
            return False
        if y != "+" and a[index] != y:
            return False
    return len(a) == len(b)


def _generalize(a: list[str], b: list[str]) -> list[str]:
    """The narrowest filter covering both."""
    merged: list[str] = []
    for index in range(max(len(a), len(b))):
        if index >= len(a) or index >= len(b) or a[index] == "#" or b[index] == "#":
            merged.append("#")
            break
        merged.append(a[index] if a[index] == b[index] else "+")
    return merged


def cover(filters: Mapping[str, int]) -> dict[str, int]:
    """Non-overlapping filters matching everything ``filters`` match, each with the highest QoS it stands for.

    Wildcard filters are merged pairwise (few, quadratic); a filter without
    wildcards (a plain topic, possibly one of thousands a discovery plugin
    subscribes) can only overlap a wildcard filter that covers it, so each is
    checked against the merged wildcards alone and kept or folded into its cover.
    """
    wildcards = {f: q for f, q in filters.items() if "+" in f or "#" in f}
    merged = _merge(wildcards)
    levels = {name: validate_filter(name) for name in merged}
    for topic_filter, level in filters.items():
        if topic_filter in wildcards:
            continue
        topic_levels = validate_filter(topic_filter)
        covering = next((name for name, cover_levels in levels.items() if _covers(cover_levels, topic_levels)), None)
        if covering is None:
            merged[topic_filter] = level
        else:
            merged[covering] = max(merged[covering], level)
    return {name: merged[name] for name in sorted(merged)}


def _merge(filters: Mapping[str, int]) -> dict[str, int]:
    """The non-overlapping cover of (wildcard) filters, by merging overlapping pairs until none overlap."""
    result = {topic_filter: validate_filter(topic_filter) for topic_filter in filters}
    qos = dict(filters)
    merged = True
    while merged:
        merged = False
        names = sorted(result)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                a, b = result[first], result[second]
                if not _intersects(a, b):
                    continue
                levels = b if _covers(b, a) else a if _covers(a, b) else _generalize(a, b)
                name = "/".join(levels)
                level = max(qos.pop(first), qos.pop(second), qos.get(name, 0))
                del result[first], result[second]
                result[name], qos[name] = levels, level
                merged = True
                break
            if merged:
                break
    return {name: qos[name] for name in result}


class SubscriptionLedger:
    """The broker filters subscribed per (broker, client id), kept in a small JSON file in the data directory."""

    def __init__(self, path: Path, key: str) -> None:
        self._path = path
        self._key = key

    def load(self) -> set[str]:
        """What an earlier run left subscribed in the session (empty if unknown)."""
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            return set(data.get(self._key, []))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, AttributeError) as err:
            _LOGGER.warning("Ignoring unreadable %s: %s", self._path, err)
            return set()

    def save(self, filters: set[str]) -> None:
        """Record the filters the broker now has for this session (atomically)."""
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[self._key] = sorted(filters)
        temporary = self._path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
            os.replace(temporary, self._path)
        except OSError as err:
            _LOGGER.warning("Cannot record the MQTT subscriptions in %s: %s", self._path, err)
