"""What a rollout is: its settings, its stages, its status, and the progress of each of its nodes.

A rollout gives one image (``firmware``, by SHA-256 or version) to the nodes its ``target`` selected when it was
created, in stages: each stage is a share (``{"percent": P}``, or just ``P``) or a count (``{"nodes": N}``) of
them, cumulative, and the last is always 100 percent. Nodes are taken in a random order fixed at creation
(``position``), at most ``rate`` per second. A node counts as updated only when it reports the new version; one
that comes back on another version, fails its command or stays silent for ``node_timeout`` seconds has failed
its attempt, and is tried again up to ``retries`` times (after ``retry_delay`` seconds); if it then reports the
new version after all (it was still rebooting), it has succeeded.

Once at least ``min_nodes_before_judging`` nodes have finished (since the start or the last resume), more than
``max_failure_ratio`` of them failing pauses the rollout (``on_failure: pause``) or aborts it (``abort``): no
further node is started, and a stage never begins before the previous one finished and was judged.

Rollout statuses: ``running`` → ``paused`` ⇄ ``running`` → ``completed`` | ``cancelled`` | ``aborted``.
Node statuses: ``pending`` → ``sending`` (the command is on its way) → ``installing`` (the node took it) →
``succeeded`` | ``failed``; ``skipped`` (already on the version), ``cancelled`` (the rollout ended first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Final

import voluptuous as vol

RUNNING: Final = "running"
PAUSED: Final = "paused"
COMPLETED: Final = "completed"
CANCELLED: Final = "cancelled"
ABORTED: Final = "aborted"
ROLLOUT_STATUSES: Final = (RUNNING, PAUSED, COMPLETED, CANCELLED, ABORTED)
ACTIVE: Final = frozenset({RUNNING, PAUSED})

PENDING: Final = "pending"
SENDING: Final = "sending"
INSTALLING: Final = "installing"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
NODE_STATUSES: Final = (PENDING, SENDING, INSTALLING, SUCCEEDED, FAILED, SKIPPED, CANCELLED)
IN_FLIGHT: Final = frozenset({SENDING, INSTALLING})
FINAL: Final = frozenset({SUCCEEDED, FAILED, SKIPPED, CANCELLED})

ON_FAILURE: Final = ("pause", "abort")
MAX_STAGES: Final = 20


def _number(minimum: float, maximum: float, *, integer: bool = False, above: bool = False) -> Any:
    """A JSON number (not a bool) in [minimum, maximum] (or (minimum, maximum] with ``above``)."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise vol.Invalid("expected a number")
        if integer and not isinstance(value, int):
            raise vol.Invalid("expected an integer")
        if value > maximum or value < minimum or (above and value == minimum):
            raise vol.Invalid(f"must be {'above' if above else 'at least'} {minimum:g} and at most {maximum:g}")
        return value

    return check


def _stage(value: Any) -> dict[str, float]:
    """``P`` or ``{"percent": P}`` (0 < P ≤ 100), or ``{"nodes": N}`` (N ≥ 1)."""
    if isinstance(value, dict):
        if set(value) == {"percent"}:
            return {"percent": float(_number(0, 100, above=True)(value["percent"]))}
        if set(value) == {"nodes"}:
            return {"nodes": _number(1, 1_000_000, integer=True)(value["nodes"])}
        raise vol.Invalid('a stage is a percentage, {"percent": P} or {"nodes": N}')
    return {"percent": float(_number(0, 100, above=True)(value))}


def _stages(value: Any) -> list[dict[str, float]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STAGES:
        raise vol.Invalid(f"expected a list of 1 to {MAX_STAGES} stages")
    stages = [_stage(item) for item in value]
    if stages[-1] != {"percent": 100.0}:
        raise vol.Invalid("the last stage must be 100 (percent): a rollout ends with every node")
    return stages


CREATE_SCHEMA = vol.Schema(
    {
        vol.Required("firmware"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Required("target"): dict,
        vol.Optional("name"): vol.All(str, vol.Length(max=100)),
        vol.Optional("stages", default=[100]): _stages,
        vol.Optional("max_failure_ratio", default=0.2): _number(0, 1),
        vol.Optional("min_nodes_before_judging", default=5): _number(1, 100_000, integer=True),
        vol.Optional("rate", default=1.0): _number(0, 1000, above=True),
        vol.Optional("node_timeout", default=600): _number(1, 7 * 86400),
        vol.Optional("retries", default=1): _number(0, 10, integer=True),
        vol.Optional("retry_delay", default=10): _number(0, 86400),
        vol.Optional("on_failure", default="pause"): vol.In(ON_FAILURE),
    }
)
"""The body of ``POST /api/ota/rollouts`` (the target is resolved by ``hub.select_nodes``)."""

SETTINGS: Final = (
    "max_failure_ratio",
    "min_nodes_before_judging",
    "rate",
    "node_timeout",
    "retries",
    "retry_delay",
    "on_failure",
)


@dataclass(slots=True)
class NodeProgress:
    """One node of a rollout."""

    node_id: str
    position: int | None
    """Its turn (0 first); None for a node skipped at creation."""
    status: str = PENDING
    attempts: int = 0
    command_id: str | None = None
    """The FIRMWARE_UPDATE command of the current (or last) attempt."""
    from_version: str | None = None
    """What it ran before its first attempt."""
    deadline: float | None = None
    """When the current attempt times out."""
    retry_at: float | None = None
    went_away: bool = False
    """The node went offline during this attempt (it rebooted): its next report judges the attempt."""
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None
    detail: str | None = None
    link: str | None = None
    """The hash of the current attempt's download link (revoked when the attempt ends); not shown."""

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the API and events (every field is a scalar: no deep copy needed, unlike ``asdict``)."""
        return {name: getattr(self, name) for name in _SHOWN}


_SHOWN = tuple(f.name for f in fields(NodeProgress) if f.name != "link")


@dataclass(slots=True)
class Rollout:
    """A rollout and its nodes (in turn order; skipped ones last)."""

    id: str
    sha256: str
    version: str
    target: dict[str, Any]
    stages: list[dict[str, float]]
    settings: dict[str, Any]
    created_by: str
    created_at: float
    name: str | None = None
    status: str = RUNNING
    stage: int = 0
    reason: str | None = None
    """Why it is paused, aborted or cancelled."""
    baseline: dict[str, int] = field(default_factory=lambda: {SUCCEEDED: 0, FAILED: 0})
    """Succeeded and failed counts at the last resume: failures are judged over the nodes finished since."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Every operator action and status change: ``{ts, action, by, detail}``."""
    updated_at: float = 0.0
    finished_at: float | None = None
    nodes: dict[str, NodeProgress] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def ordered(self) -> list[NodeProgress]:
        """The nodes that take turns, in turn order."""
        return sorted((n for n in self.nodes.values() if n.position is not None), key=lambda n: n.position or 0)

    def stage_sizes(self, positioned: int | None = None) -> list[int]:
        """How many nodes (in turn order) each stage covers, cumulative and never shrinking; ``positioned`` is how
        many take turns when the nodes are not loaded."""
        total = sum(1 for n in self.nodes.values() if n.position is not None) if positioned is None else positioned
        sizes: list[int] = []
        for stage in self.stages:
            size = math.ceil(stage["percent"] * total / 100) if "percent" in stage else int(stage["nodes"])
            sizes.append(max(min(size, total), sizes[-1] if sizes else 0))
        return sizes

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(NODE_STATUSES, 0)
        for node in self.nodes.values():
            counts[node.status] += 1
        return counts

    def record(self, ts: float, action: str, by: str, detail: str | None = None) -> None:
        self.history.append({"ts": ts, "action": action, "by": by, "detail": detail})
        self.updated_at = ts

    def summary(
        self, counts: dict[str, int] | None = None, *, total: int | None = None, positioned: int | None = None
    ) -> dict[str, Any]:
        """Everything but the nodes, with their counts by status (what lists and events carry); ``total`` and
        ``positioned`` (how many nodes, and how many take turns) when the nodes are not loaded."""
        return {
            "id": self.id,
            "name": self.name,
            "firmware": self.sha256,
            "version": self.version,
            "target": self.target,
            "stages": self.stages,
            "stage": self.stage,
            "stage_sizes": self.stage_sizes(positioned),
            **self.settings,
            "status": self.status,
            "reason": self.reason,
            "counts": counts if counts is not None else self.counts(),
            "total": len(self.nodes) if total is None else total,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "history": list(self.history),
        }

    def as_dict(self) -> dict[str, Any]:
        """The summary and every node's progress (turn order, skipped last)."""
        turn = self.ordered()
        skipped = [n for n in self.nodes.values() if n.position is None]
        return {**self.summary(), "nodes": [n.as_dict() for n in (*turn, *skipped)]}
