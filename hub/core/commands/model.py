"""What a command is, and the lifecycle it moves through.

::

    queued ──▶ sent ──▶ delivered ──▶ acknowledged ──▶ succeeded
      │          │          │              │        └─▶ failed
      └──────────┴──────────┴──────────────┴──────────▶ expired | cancelled

* ``queued``: accepted, validated and stored; waiting for its node (and its turn by priority).
* ``sent``: handed to the transport at QoS 1.
* ``delivered``: the broker acknowledged it (MQTT PUBACK): it is the broker's job now.
* ``acknowledged``: the node said it received the command and is carrying it out.
* ``succeeded`` / ``failed``: the node's verdict, with its reason in ``detail``.
* ``expired``: the TTL passed before a verdict; a command past its TTL is never sent.
* ``cancelled``: an operator withdrew it.  A command cancelled after it was sent may
  still have reached the node; the hub then ignores the node's answer.

Transitions only move forward (a late PUBACK after the node's answer changes nothing),
and a stage may be skipped: a node that answers ``ok`` at once goes from ``delivered``
(or even ``sent``) straight to ``succeeded``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

QUEUED: Final = "queued"
SENT: Final = "sent"
DELIVERED: Final = "delivered"
ACKNOWLEDGED: Final = "acknowledged"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
EXPIRED: Final = "expired"
CANCELLED: Final = "cancelled"

STATUSES: Final = (QUEUED, SENT, DELIVERED, ACKNOWLEDGED, SUCCEEDED, FAILED, EXPIRED, CANCELLED)
TERMINAL: Final = frozenset({SUCCEEDED, FAILED, EXPIRED, CANCELLED})
PENDING: Final = frozenset(STATUSES) - TERMINAL

_RANK: Final = {QUEUED: 0, SENT: 1, DELIVERED: 2, ACKNOWLEDGED: 3}
"""Order of the non-terminal stages; every terminal status outranks them all."""

OFFLINE_QUEUE: Final = "queue"
"""A command to an offline node waits (until its TTL) for the node to come back."""
OFFLINE_REFUSE: Final = "refuse"
"""A command to an offline node is refused at once, nothing stored or sent."""
OFFLINE_POLICIES: Final = (OFFLINE_QUEUE, OFFLINE_REFUSE)

MIN_PRIORITY: Final = 0
MAX_PRIORITY: Final = 10
DEFAULT_PRIORITY: Final = 5
DEFAULT_TTL: Final = 300.0
"""Seconds a command may take from creation to the node's verdict, unless the request says otherwise."""
MAX_TTL: Final = 7 * 86400.0


def can_move(old: str, new: str) -> bool:
    """True when ``old`` → ``new`` is a forward step of the lifecycle."""
    if old in TERMINAL:
        return False
    if new in TERMINAL:
        return True
    return _RANK[new] > _RANK[old]


@dataclass(slots=True)
class Command:
    """One command to one node, with its whole history."""

    id: str
    """Also the ``message_id`` the node sees: a node executes each id at most once."""
    node_id: str
    action: str
    params: dict[str, Any]
    priority: int
    ttl: float
    created: float
    sender: str
    """Who asked: a user name, ``token:<name>``, or the plugin that issued it."""
    offline_policy: str = OFFLINE_QUEUE
    status: str = QUEUED
    updated: float = 0.0
    detail: str | None = None
    """The node's reason on ``failed``, or why the hub gave up (``expired``, ``cancelled``)."""
    history: list[tuple[str, float, str | None]] = field(default_factory=list)
    """Every status it went through: (status, ts, detail)."""

    @property
    def expires(self) -> float:
        """When the TTL runs out."""
        return self.created + self.ttl

    @property
    def done(self) -> bool:
        """True once it has a final status."""
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        """Plain data for events, storage and the API."""
        return {
            "id": self.id,
            "node_id": self.node_id,
            "action": self.action,
            "params": dict(self.params),
            "priority": self.priority,
            "ttl": self.ttl,
            "created": self.created,
            "expires": self.expires,
            "sender": self.sender,
            "offline_policy": self.offline_policy,
            "status": self.status,
            "updated": self.updated,
            "detail": self.detail,
            "history": [{"status": status, "ts": ts, "detail": detail} for status, ts, detail in self.history],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Command:
        """The inverse of :meth:`as_dict` (storage restores pending commands with it)."""
        return cls(
            id=data["id"],
            node_id=data["node_id"],
            action=data["action"],
            params=dict(data["params"]),
            priority=int(data["priority"]),
            ttl=float(data["ttl"]),
            created=float(data["created"]),
            sender=data["sender"],
            offline_policy=data.get("offline_policy", OFFLINE_QUEUE),
            status=data["status"],
            updated=float(data["updated"]),
            detail=data.get("detail"),
            history=[(item["status"], float(item["ts"]), item.get("detail")) for item in data.get("history", ())],
        )
