"""What a hub process is for: its role, and the capabilities plugins ask it about.

Plugins never compare role names.  They ask what the role allows
(``hub.role.takes_input``, ``hub.role.serves_http``,
``hub.role.runs_maintenance``), so a role added later (the scale-out issue's
``worker`` and ``api``) means the right thing to every plugin without any of
them changing.  ``str(hub.role)`` is the name, for logs and display.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Role:
    """One kind of hub process, described by what it may do."""

    name: str
    description: str
    takes_input: bool
    """Connect to brokers and accept device messages (transports, the embedded broker), and judge silence."""
    serves_http: bool
    """Listen for HTTP clients: the API, WebSockets, the dashboard."""
    runs_maintenance: bool
    """Periodic housekeeping such as retention: only the processes that own it, not every one."""

    def __str__(self) -> str:
        return self.name


ROLE_ALL = Role(
    "all",
    "hub run: one process does everything",
    takes_input=True,
    serves_http=True,
    runs_maintenance=True,
)
ROLE_CLI = Role(
    "cli",
    "a one-off command (hub nodes, hub db upgrade, hub user …): set up and restore state, connect to nothing",
    takes_input=False,
    serves_http=False,
    runs_maintenance=False,
)

ROLE_WORKER = Role(
    "worker",
    "hub run --role worker: ingest device messages (from RabbitMQ) into the database; no HTTP",
    takes_input=True,
    serves_http=False,
    runs_maintenance=True,
)
ROLE_API = Role(
    "api",
    "hub run --role api: serve HTTP and WebSocket clients; takes no device input (workers do)",
    takes_input=False,
    serves_http=True,
    runs_maintenance=False,
)

ROLES: MappingProxyType[str, Role] = MappingProxyType(
    {role.name: role for role in (ROLE_ALL, ROLE_WORKER, ROLE_API, ROLE_CLI)}
)
"""Every role by name."""
