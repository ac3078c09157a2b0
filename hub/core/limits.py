"""How big the fleet state may grow: nodes, new nodes a minute, entities and attributes per node.

The registry holds every node, entity and attribute in memory, and whatever a
device publishes can create them: without a cap, one MAC publishing fresh keys
(or a script publishing fresh MACs) grows the hub until it stalls or is killed,
also while the database is down and nothing is written.  The registry enforces
these limits itself, so every integration is covered; it refuses with
:class:`~hub.core.errors.LimitExceeded`, whose ``reason`` an integration counts
with :class:`~hub.core.rejections.Rejections` (the rest of the message is kept).

Configured in config.yaml's ``hub: limits:`` (docs/config.md).  Nodes restored
from storage and nodes named in config.yaml's ``nodes:`` section are the
operator's own and are never refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import LimitExceeded

REASON_NODE_LIMIT = "node_limit"
"""A new node was refused: the hub already knows ``max_nodes`` nodes."""
REASON_NODE_RATE = "node_rate_limit"
"""A new node was refused: more than ``new_nodes_per_minute`` arrived (it is admitted on a later message)."""
REASON_ENTITY_LIMIT = "entity_limit"
"""A new entity was refused: its node already has ``max_entities_per_node``."""
REASON_ATTRIBUTE_LIMIT = "attribute_limit"
"""A new attribute was refused: too many on its node or entity, or its value is larger than ``max_attribute_bytes``."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The caps; the defaults are what config.yaml's ``hub: limits:`` gives when left out."""

    max_nodes: int = 20_000
    new_nodes_per_minute: int = 1_000
    max_entities_per_node: int = 512
    max_attributes: int = 128
    """Per node and per entity."""
    max_attribute_bytes: int = 4096
    """One attribute value, as JSON."""

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> Limits:
        """From the validated ``hub: limits:`` mapping (None or missing keys: the defaults)."""
        return cls(**(section or {}))


class NodeRate:
    """A token bucket: ``per_minute`` new nodes a minute, in bursts of up to that many.

    A fleet that powers up together (up to ``per_minute`` nodes) registers at once; a flood of
    made-up MACs is admitted at the steady rate and the rest refused until tokens return.
    """

    __slots__ = ("_clock", "_last", "_per_second", "_size", "_tokens")

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self._size = float(per_minute)
        self._per_second = per_minute / 60.0
        self._tokens = self._size
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        """True (and one token used) when a new node may register now."""
        now = self._clock()
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:  # a clock stepped back refills nothing and takes nothing
            self._tokens = min(self._size, self._tokens + elapsed * self._per_second)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def check_attributes(current: Mapping[str, Any], changes: Mapping[str, Any], limits: Limits, owner: str) -> None:
    """LimitExceeded (naming ``owner``) unless merging ``changes`` into ``current`` stays within the limits."""
    _fitting, refused = fit_attributes(current, changes, limits)
    if refused is not None:
        raise LimitExceeded(refused.reason, f"{owner}: {refused}")


def fit_attributes(
    current: Mapping[str, Any], changes: Mapping[str, Any], limits: Limits
) -> tuple[dict[str, Any], LimitExceeded | None]:
    """The part of ``changes`` that fits, and a LimitExceeded describing what was left out (None: all fits).

    Changing an attribute the node already has always fits (unless its value is too large);
    new ones fit while there is room.  Values are measured only when they are not short
    strings, numbers or booleans, so the usual change costs no serialisation.
    """
    room = limits.max_attributes - len(current)
    fitting: dict[str, Any] = {}
    too_many: list[str] = []
    too_large: list[str] = []
    for key, value in changes.items():
        if not _small(value, limits.max_attribute_bytes):
            too_large.append(key)
            continue
        if key not in current:
            if room <= 0:
                too_many.append(key)
                continue
            room -= 1
        fitting[key] = value
    if not too_many and not too_large:
        return fitting, None
    parts = []
    if too_many:
        parts.append(f"{len(too_many)} attribute(s) over max_attributes {limits.max_attributes} ({_names(too_many)})")
    if too_large:
        parts.append(
            f"{len(too_large)} value(s) over max_attribute_bytes {limits.max_attribute_bytes} ({_names(too_large)})"
        )
    return fitting, LimitExceeded(REASON_ATTRIBUTE_LIMIT, "; ".join(parts))


def _small(value: Any, max_bytes: int) -> bool:
    kind = type(value)
    if kind is str:
        return len(value) * 4 <= max_bytes or len(value.encode()) <= max_bytes
    if value is None or kind is bool or kind is int or kind is float:
        return True
    try:
        return len(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)) <= max_bytes
    except TypeError:  # nested too deep for orjson: certainly not small
        return False


def _names(keys: list[str]) -> str:
    shown = ", ".join(repr(key[:40]) for key in keys[:3])
    return shown + (", …" if len(keys) > 3 else "")
