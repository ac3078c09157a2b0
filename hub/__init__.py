"""hub: a self-hosted, plugin-based hub for fleets of ESP32 nodes.

``hub.__all__`` *is* the public API for plugin authors: every name a plugin
(built-in, first-party or third-party) needs is importable from ``hub``, and
nothing else under ``hub.core`` is promised to stay.  The hook specifications a
plugin implements are in :mod:`hub.core.plugins.hookspecs`; docs/plugin-api.md
documents each name here and each hook (tests/core/test_docs.py keeps them in
step).
"""

from __future__ import annotations

from hub.core.actor import acting_as, current_actor
from hub.core.addresses import is_loopback, url_host
from hub.core.bootstrap import build_hub
from hub.core.commands import Command, CommandManager, Deliverer
from hub.core.const import (
    DATA_BROKER_URL,
    DATA_DATABASE,
    DATA_HTTP_URL,
    EVENT_AVAILABILITY_REPORTED,
    EVENT_COMMAND_UPDATED,
    EVENT_ENTITY_REGISTERED,
    EVENT_ENTITY_REMOVED,
    EVENT_HUB_STARTED,
    EVENT_HUB_STOPPING,
    EVENT_NODE_REGISTERED,
    EVENT_NODE_REMOVED,
    EVENT_NODE_STATUS_CHANGED,
    EVENT_NODE_UPDATED,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    EVENT_TRANSPORT_CONNECTED,
    EVENT_TRANSPORT_DISCONNECTED,
    REASON_LWT,
    REASON_MESSAGE,
    REASON_TIMEOUT,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    STATUS_UNKNOWN,
)
from hub.core.database import Database
from hub.core.durability import Durability
from hub.core.errors import (
    CommandNotFound,
    CommandRejected,
    ConfigError,
    HubError,
    HubStateError,
    InvalidBrokerUrl,
    InvalidMac,
    InvalidTarget,
    LimitExceeded,
    MigrationError,
    ServiceNotFound,
    ServiceValidationError,
    StartupError,
    StorageOverloaded,
    StorageUnavailable,
)
from hub.core.event_types import (
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
from hub.core.events import MATCH_ALL, Event, EventBus
from hub.core.hub import Hub, HubState
from hub.core.keys import HubData, HubKey
from hub.core.labels import MAX_AREA_LENGTH, MAX_TAG_LENGTH, MAX_TAGS, normalize_area, normalize_tags
from hub.core.leadership import Leadership
from hub.core.limits import Limits, fit_attributes
from hub.core.mac import normalize_mac
from hub.core.messages import MessageRouter, Transport, validate_filter
from hub.core.metrics import Metrics
from hub.core.plugins.hookspecs import hookimpl
from hub.core.plugins.manager import PluginManager
from hub.core.plugins.manifest import Manifest
from hub.core.privatefiles import file_lock, file_stamp, write_private_json
from hub.core.ratelimit import RateLimitedLogger
from hub.core.registry import Entity, Node, NodeRegistry
from hub.core.rejections import Rejections
from hub.core.roles import ROLE_ALL, ROLE_API, ROLE_CLI, ROLE_WORKER, ROLES, Role
from hub.core.services import ServiceRegistry
from hub.core.targets import Target, select_nodes
from hub.version import __version__

__all__ = [
    # the hub and its parts
    "Hub",
    "HubState",
    "Role",
    "ROLES",
    "ROLE_ALL",
    "ROLE_CLI",
    "ROLE_WORKER",
    "ROLE_API",
    "build_hub",
    "hookimpl",
    "Manifest",
    "PluginManager",
    "__version__",
    "EventBus",
    "Event",
    "MATCH_ALL",
    "NodeRegistry",
    "Node",
    "Entity",
    "ServiceRegistry",
    "MessageRouter",
    "Transport",
    "validate_filter",
    "Durability",
    "Database",
    "Metrics",
    "HubData",
    "HubKey",
    # commands to nodes
    "CommandManager",
    "Command",
    "Deliverer",
    # areas, tags and targets
    "Target",
    "select_nodes",
    "normalize_area",
    "normalize_tags",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "MAX_AREA_LENGTH",
    # helpers for integrations
    "normalize_mac",
    "Leadership",
    "Limits",
    "fit_attributes",
    "Rejections",
    "RateLimitedLogger",
    "is_loopback",
    "url_host",
    "current_actor",
    "acting_as",
    "file_lock",
    "file_stamp",
    "write_private_json",
    # errors
    "HubError",
    "ConfigError",
    "StartupError",
    "HubStateError",
    "InvalidMac",
    "InvalidBrokerUrl",
    "ServiceNotFound",
    "ServiceValidationError",
    "StorageUnavailable",
    "StorageOverloaded",
    "MigrationError",
    "CommandRejected",
    "CommandNotFound",
    "InvalidTarget",
    "LimitExceeded",
    # events and their data
    "EventType",
    "EVENT_HUB_STARTED",
    "EVENT_HUB_STOPPING",
    "EVENT_NODE_REGISTERED",
    "EVENT_NODE_UPDATED",
    "EVENT_NODE_REMOVED",
    "EVENT_ENTITY_REGISTERED",
    "EVENT_ENTITY_REMOVED",
    "EVENT_STATE_REPORTED",
    "EVENT_STATE_CHANGED",
    "EVENT_AVAILABILITY_REPORTED",
    "EVENT_NODE_STATUS_CHANGED",
    "EVENT_COMMAND_UPDATED",
    "EVENT_TRANSPORT_CONNECTED",
    "EVENT_TRANSPORT_DISCONNECTED",
    "NoEventData",
    "NodeRegisteredData",
    "NodeUpdatedData",
    "NodeRemovedData",
    "EntityRegisteredData",
    "EntityRemovedData",
    "StateReportedData",
    "StateChangedData",
    "AvailabilityReportedData",
    "NodeStatusChangedData",
    "CommandUpdatedData",
    "TransportData",
    # node statuses and why they change
    "STATUS_UNKNOWN",
    "STATUS_ONLINE",
    "STATUS_OFFLINE",
    "REASON_MESSAGE",
    "REASON_LWT",
    "REASON_TIMEOUT",
    # well-known hub.data keys
    "DATA_BROKER_URL",
    "DATA_HTTP_URL",
    "DATA_DATABASE",
]
