"""Reloading a process's registry from PostgreSQL after it was away from the event fan-out.

The fan-out keeps caches coherent only while a process is connected: its queue
is exclusive and auto-delete, so while the connection is down (RabbitMQ
restarted, a network cut, the connection closed by an operator) the events
other processes publish reach nobody on its behalf.  So at every
(re)connection, once its new queue is bound (nothing published from then on is
missed), the process reads the fleet from the database, the source of truth
(storage's ``storage.fleet`` service: the same queries as the restore at
start), and turns the differences into one fan-out batch applied with
:class:`.remote.RemoteEvents` under the origin :data:`ORIGIN_RESYNC`.  That
reuses the same rules as live events: nodes and entities the process lacks are
added, changed fields set, a status only when newer (``status_since``),
``last_seen`` and states only forward; each change is fired on the bus with
``origin`` (storage does not write it again, the fan-out does not echo it), so
WebSocket clients see it like any other change.

Fan-out messages that arrive while the database is read are held and applied
after the difference, in order: anything in them is as new as the snapshot or
newer.  Entities absent from the database are dropped from the cache only in
processes that take no input (API instances): a worker may hold an entity it
registered a moment ago whose row is still in its storage batch.  Nodes absent
from the database are not removed: removing one goes through
``registry.remove``, whose event storage acts on, and a node another process
registered a moment ago (heard through the fan-out before that process
committed it) must not be deleted by a cache that read the database too early.
A node removed elsewhere while this process was away stays in its cache until
its next restart (or until the removal is repeated).
"""

from __future__ import annotations

from typing import Any

from .remote import UPDATABLE

ORIGIN_RESYNC = "resync"
"""``origin`` of the events a resync fires (not another process's instance id: the database's)."""


def difference(local: Any, stored: list[dict[str, Any]], *, removals: bool) -> dict[str, list[Any]]:
    """The fan-out batch that brings the registry ``local`` to what the database holds (``stored``: node dicts)."""
    events: list[Any] = []
    states: list[Any] = []
    for data in stored:
        node_id = data["node_id"]
        node = local.get(node_id)
        if node is None:
            events.append(("node_registered", {"node_id": node_id, "node": data}))
            continue
        changes = {key: data[key] for key in UPDATABLE if _differs(getattr(node, key), data[key], key)}
        if changes:
            events.append(("node_updated", {"node_id": node_id, "changes": changes}))
        since = data["status_since"]
        if (
            since is not None
            and data["status"] != node.status
            and (node.status_since is None or since > node.status_since)
        ):
            events.append(
                (
                    "node_status_changed",
                    {"node_id": node_id, "new": data["status"], "reason": data["status_reason"], "ts": since},
                )
            )
        entities = data.get("entities") or ()
        stored_keys = set()
        node_states = {}
        for entity in entities:
            stored_keys.add(entity["key"])
            if entity["key"] not in node.entities:
                events.append(("entity_registered", {"node_id": node_id, "entity": entity}))
            if entity["last_reported"] is not None:
                node_states[entity["key"]] = (entity["state"], entity["last_changed"], entity["last_reported"])
        if removals:
            events.extend(
                ("entity_removed", {"node_id": node_id, "key": key}) for key in node.entities if key not in stored_keys
            )
        if node_states or (data["last_seen"] is not None and data["last_seen"] != node.last_seen):
            states.append((node_id, data["last_seen"], node_states))
    return {"events": events, "states": states}


def _differs(held: Any, stored: Any, key: str) -> bool:
    if key == "attributes":
        return any(held.get(name, _MISSING) != value for name, value in (stored or {}).items())
    if key == "tags":
        return list(held) != list(stored or ())
    return held != stored


_MISSING = object()
