"""Typed event names and the data each bus event carries, for the type checker only.

An :class:`EventType` is a ``str`` carrying the TypedDict of its data (Home
Assistant's ``EventType`` does the same), so with
``EVENT_STATE_REPORTED: EventType[StateReportedData]`` a type checker checks
``hub.bus.fire(EVENT_STATE_REPORTED, {...})`` against the TypedDict and types
``event.data`` in a listener registered with ``hub.bus.listen``.

At runtime nothing changes: names are strings, data are plain dicts, and no
event is validated; the ingest path fires hundreds of thousands a second.  The
constants themselves are in :mod:`hub.core.const`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar

_DataT = TypeVar("_DataT", bound=Mapping[str, Any])


if TYPE_CHECKING:

    class EventType(Generic[_DataT]):
        """To the type checker not a ``str``, so data of the wrong shape cannot fall back to the untyped overload."""

        def __init__(self, value: str, /) -> None: ...
        def __hash__(self) -> int: ...
        def __eq__(self, other: object) -> bool: ...

else:

    class EventType(str, Generic[_DataT]):
        """An event name whose data has type ``_DataT`` (a TypedDict); at runtime a plain ``str`` subclass."""

        __slots__ = ()


class NoEventData(TypedDict):
    """``hub_started``, ``hub_stopping``: nothing to say beyond the event's type and time."""


class NodeRegisteredData(TypedDict):
    """``node_registered``: a node was seen for the first time."""

    node_id: str
    node: dict[str, Any]
    """``Node.as_dict()``, with its entities (and its ``area`` and ``tags``)."""


class NodeUpdatedData(TypedDict):
    """``node_updated``: name, description, firmware, area, tags or attributes changed."""

    node_id: str
    changes: dict[str, Any]
    """``{field: new value}``: ``area`` is a str or None, ``tags`` the node's whole new list; for ``attributes``
    only the attributes that changed."""


class NodeRemovedData(TypedDict):
    """``node_removed``: an operator deleted the node."""

    node_id: str


class EntityRegisteredData(TypedDict):
    """``entity_registered``: a node gained an entity."""

    node_id: str
    entity: dict[str, Any]
    """``Entity.as_dict()``."""


class EntityRemovedData(TypedDict):
    """``entity_removed``: a node lost an entity."""

    node_id: str
    key: str


class StateReportedData(TypedDict):
    """``state_reported``: one message's readings, changed or not."""

    node_id: str
    ts: float
    """When the node measured (epoch seconds)."""
    states: dict[str, Any]
    """``{entity key: value}``; storage keeps a reference until it is written, so never mutate it."""
    dedupe: int | None
    """Identifies a message that may be redelivered, so storage keeps it once."""


class StateChangedData(TypedDict):
    """``state_changed``: one entity's value differs from before (also its first value)."""

    node_id: str
    key: str
    old_state: Any
    """None for an entity's first value."""
    new_state: Any
    ts: float


class AvailabilityReportedData(TypedDict):
    """``availability_reported``: a node (or its broker, by Last Will) said it is online or offline."""

    node_id: str
    online: bool
    ts: float


class NodeStatusChangedData(TypedDict):
    """``node_status_changed``: presence decided a node's status changed."""

    node_id: str
    old: str
    new: str
    """One of the ``STATUS_*`` values."""
    reason: str
    """One of the ``REASON_*`` values."""
    ts: float


class CommandUpdatedData(TypedDict):
    """``command_updated``: a command was created or moved to another status."""

    command: dict[str, Any]
    """``Command.as_dict()``: id, node_id, action, params, priority, ttl, created, expires, sender, status, …"""


class TransportData(TypedDict):
    """``transport_connected``, ``transport_disconnected``: a message transport gained or lost its broker."""

    transport: str
    """The transport's name, e.g. ``mqtt``."""
