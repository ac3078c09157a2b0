"""hub: a self-hosted, plugin-based hub for fleets of ESP32 nodes.

The public API for plugin authors is what this package exports, plus the
hook specifications in :mod:`hub.core.plugins.hookspecs` and the names in
:mod:`hub.core.const`.
"""

from __future__ import annotations

from hub.core.events import MATCH_ALL, Event, EventBus
from hub.core.hub import Hub, HubState
from hub.core.mac import normalize_mac
from hub.core.plugins.hookspecs import hookimpl
from hub.core.plugins.manifest import Manifest
from hub.core.registry import Entity, Node, NodeRegistry
from hub.core.rejections import Rejections
from hub.core.roles import ROLE_ALL, ROLE_CLI, ROLES, Role
from hub.version import __version__

__all__ = [
    "MATCH_ALL",
    "ROLES",
    "ROLE_ALL",
    "ROLE_CLI",
    "Entity",
    "Event",
    "EventBus",
    "Hub",
    "HubState",
    "Manifest",
    "Node",
    "NodeRegistry",
    "Rejections",
    "Role",
    "__version__",
    "hookimpl",
    "normalize_mac",
]
