"""Built-in ``http``: the authenticated REST + WebSocket API (aiohttp), /metrics, and the home of web plugins.

Config section ``http:`` (see :mod:`.config`); ``hub run --http-port`` overrides
the port.  The server starts in ``hub_start`` and stops in ``hub_stop``, only in
roles that serve HTTP (not for one-off CLI commands).  Plugins add pages, API
routes and static files through the ``hub_http_routes`` and ``hub_http_static``
hooks.  Users and
tokens are managed with ``hub user …`` and ``hub token …`` (see :mod:`.cli`); ``hub command``,
``hub node set`` and ``hub ban …`` use the running hub's API (:mod:`.api_client`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import voluptuous as vol

from hub import Hub, HubKey, Manifest, StartupError, hookimpl

from .audit import MIGRATIONS
from .audit import metadata as audit_metadata
from .auth.store import AuthStoreError
from .ban_cli import register_ban_commands
from .cli import register_commands
from .command_cli import register_command
from .config import CONFIG_SCHEMA, SECTION, port
from .node_cli import register_node_command
from .routes import PRINCIPAL_KEY
from .server import HttpServer

__all__ = ["DATA_SERVER", "MANIFEST", "PRINCIPAL_KEY"]

MANIFEST = Manifest(name="http", after=("storage",), sections=(SECTION,))
"""After storage: the API reads the restored fleet and storage's services, and stops serving before storage's
final flush (so the audit trail's last records are written)."""

DATA_SERVER: HubKey[HttpServer] = HubKey("http.server")
"""Hub.data key of the running :class:`~.server.HttpServer` (for tests and diagnostics)."""


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``http:`` section."""
    return {SECTION: CONFIG_SCHEMA}


@hookimpl
def hub_cli_commands(register: Callable[..., None]) -> None:
    """``hub user …``, ``hub token …``, ``hub ban …``, ``hub command`` and ``hub node set``."""
    register_commands(register)
    register_ban_commands(register)
    register_command(register)
    register_node_command(register)


@hookimpl
def hub_db_migrations(register: Callable[..., None]) -> None:
    """The ``http_audit`` table of the audit trail."""
    register("http", MIGRATIONS, audit_metadata)


@hookimpl
def hub_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``hub run --http-port PORT``."""
    parser.add_argument("--http-port", type=_port_argument, metavar="PORT", help="serve the HTTP API on this port")


@hookimpl
def hub_run_config(config: dict[str, Any], args: argparse.Namespace) -> None:
    """Apply ``--http-port`` over ``http: port:``."""
    if getattr(args, "http_port", None) is not None:
        config[SECTION]["port"] = args.http_port


@hookimpl
async def hub_start(hub: Hub) -> None:
    """Listen, in the roles that serve HTTP."""
    if not hub.role.serves_http:
        return
    try:
        server = HttpServer(hub, hub.config[SECTION])
    except AuthStoreError as err:  # serving without the users and tokens would lock everyone out silently
        raise StartupError(f"http: {err}") from err
    await server.start()
    hub.data[DATA_SERVER] = server


@hookimpl
async def hub_stop(hub: Hub) -> None:
    """Close WebSockets and stop listening."""
    server = hub.data.pop(DATA_SERVER, None)
    if server is not None:
        await server.stop()


def _port_argument(value: str) -> int:
    try:
        return port(value)
    except vol.Invalid:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
