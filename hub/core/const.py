"""Names shared by the core and every plugin: event types, node statuses, status reasons, well-known data keys.

Event types are :class:`~hub.core.event_types.EventType` strings typed with their data
(see :mod:`hub.core.event_types`), data keys :class:`~hub.core.keys.HubKey` strings typed
with their value; at runtime both are plain strings.
"""

from __future__ import annotations

from typing import Final

from .database import Database
from .event_types import (
    AvailabilityReportedData,
    CommandUpdatedData,
    EntityRegisteredData,
    EntityRemovedData,
    EventType,
    NodeRegisteredData,
    NodeRemovedData,
    NodeStatusChangedData,
    NodeUpdatedData,
    NoEventData,
    StateChangedData,
    StateReportedData,
    TransportData,
)
from .keys import HubKey

# --- Event types (see docs/plugin-api.md for each event's data) -------------
EVENT_HUB_STARTED: Final[EventType[NoEventData]] = EventType("hub_started")
"""Every plugin's ``hub_start`` has run."""
EVENT_HUB_STOPPING: Final[EventType[NoEventData]] = EventType("hub_stopping")
"""The hub is about to call ``hub_stop``."""
EVENT_NODE_REGISTERED: Final[EventType[NodeRegisteredData]] = EventType("node_registered")
"""A node was seen for the first time. data: node_id, node (Node.as_dict())."""
EVENT_NODE_UPDATED: Final[EventType[NodeUpdatedData]] = EventType("node_updated")
"""Name, description, firmware or attributes changed. data: node_id, changes {field: new value}."""
EVENT_NODE_REMOVED: Final[EventType[NodeRemovedData]] = EventType("node_removed")
"""An operator deleted the node. data: node_id."""
EVENT_ENTITY_REGISTERED: Final[EventType[EntityRegisteredData]] = EventType("entity_registered")
"""A node gained an entity. data: node_id, entity (Entity.as_dict())."""
EVENT_ENTITY_REMOVED: Final[EventType[EntityRemovedData]] = EventType("entity_removed")
"""A node lost an entity (e.g. its discovery config was withdrawn). data: node_id, key."""
EVENT_STATE_REPORTED: Final[EventType[StateReportedData]] = EventType("state_reported")
"""A node reported readings, changed or not; one per message. data: node_id, ts, states {key: value}, dedupe."""
EVENT_STATE_CHANGED: Final[EventType[StateChangedData]] = EventType("state_changed")
"""One entity's state differs from before. data: node_id, key, old_state, new_state, ts."""
EVENT_AVAILABILITY_REPORTED: Final[EventType[AvailabilityReportedData]] = EventType("availability_reported")
"""A node (or its broker, via LWT) said it is online or offline. data: node_id, online, ts."""
EVENT_NODE_STATUS_CHANGED: Final[EventType[NodeStatusChangedData]] = EventType("node_status_changed")
"""Presence decided a node's status changed. data: node_id, old, new, reason, ts."""

EVENT_COMMAND_UPDATED: Final[EventType[CommandUpdatedData]] = EventType("command_updated")
"""A command was created or changed status. data: command (Command.as_dict())."""

EVENT_TRANSPORT_CONNECTED: Final[EventType[TransportData]] = EventType("transport_connected")
"""A message transport (re)connected to its broker. data: transport (e.g. ``mqtt``)."""
EVENT_TRANSPORT_DISCONNECTED: Final[EventType[TransportData]] = EventType("transport_disconnected")
"""A message transport lost its broker while running: the hub hears no node now. data: transport."""

# --- Node status and the reasons it changes ---------------------------------
STATUS_UNKNOWN: Final = "unknown"
STATUS_ONLINE: Final = "online"
STATUS_OFFLINE: Final = "offline"

REASON_MESSAGE: Final = "message"
"""The node published something (telemetry or an ``online`` status)."""
REASON_LWT: Final = "lwt"
"""The node or its broker said ``offline`` (Last Will, or an explicit status)."""
REASON_TIMEOUT: Final = "timeout"
"""The node was silent for longer than presence allows."""

# --- Well-known keys in Hub.data shared between plugins ----------------------
DATA_BROKER_URL: Final[HubKey[str]] = HubKey("mqtt.broker_url")
"""The URL MQTT clients (nodes, the simulator) should connect to; set by the broker or mqtt plugin."""
DATA_HTTP_URL: Final[HubKey[str]] = HubKey("http.url")
"""The base URL the HTTP API listens on (``http://127.0.0.1:8124``); set by the http plugin once it listens."""
DATA_DATABASE: Final[HubKey[Database]] = HubKey("storage.database")
"""The :class:`hub.core.database.Database` plugins that own tables use; set by storage before any other setup."""
