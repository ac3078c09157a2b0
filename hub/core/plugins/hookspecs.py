"""The public plugin API: every hook a plugin may implement.

Write a module (or class) with a ``MANIFEST = hub.Manifest(…)`` and functions
named like these, decorated with ``@hub.hookimpl``, and list it under the
``hub`` entry-point group of your distribution.  Implement only the hooks you need, and in each only the
arguments you need (pluggy passes them by name).  The lifecycle hooks
(``hub_setup``, ``hub_start``, ``hub_demo``, ``hub_stop``, ``hub_shutdown``)
may return an awaitable, which the hub awaits; the others run before an event
loop exists (config schemas, command-line options) and must return plainly.

Order of a hub's life, and which hooks run when::

    hub_config_schema      once, before config.yaml is validated
    hub_cli_commands       once, when the command line is built
    hub_run_arguments      once, when ``hub run``'s options are built
    hub_run_config         ``hub run`` only: after config.yaml is validated, before start
    hub_db_migrations      storage's setup and ``hub db upgrade``: declare the plugin's own tables' migrations
    hub_setup              start: register listeners, services, subscriptions, restore state
    hub_start              start: begin taking input (connect to brokers, start timers)
    hub_http_routes        during the http plugin's start: add HTTP routes and pages
    hub_http_static        during the http plugin's start: add static file directories
    hub_demo               only for ``hub run --demo N``, after start
    ... running ...
    hub_stop               stop: stop taking input (disconnect, acknowledge what is durable)
    hub_shutdown           stop: flush and close (write buffers, close databases)

Plugins are called one at a time in the order their manifests give (see
:mod:`.ordering`), ``hub_stop`` and ``hub_shutdown`` in reverse.  A plugin whose
hook raises is reported, unregistered and the hub runs on without it and
without the plugins that require it (see ``hub plugins``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from hub.core.hub import Hub

hookspec = pluggy.HookspecMarker("hub")
hookimpl = pluggy.HookimplMarker("hub")


@hookspec
def hub_config_schema() -> dict[str, Any] | None:  # type: ignore[empty-body]
    """Declare the config.yaml sections this plugin owns.

    Return ``{"section": schema}`` where ``schema`` is a voluptuous schema (or
    anything ``voluptuous.Schema`` accepts) for the section's value.  The
    schema must accept ``{}`` (the section left out) and fill in defaults.
    The validated section is ``hub.config["section"]``.
    """


@hookspec
def hub_cli_commands(register: Callable[..., None]) -> None:
    """Add subcommands to the ``hub`` command line.

    Call ``register(name, handler, help="…", arguments=add_arguments)`` where
    ``add_arguments(parser)`` adds argparse options and ``handler(args)``
    runs the command (it may be a coroutine function) and returns an exit
    code.  ``args.config`` is the ``-c`` path.  Names with a space
    (``"db upgrade"``) become nested subcommands.
    """


@hookspec
def hub_db_migrations(register: Callable[..., None]) -> None:
    """Declare the alembic migrations of the database tables this plugin owns.

    Call ``register(name, directory, metadata=None)``: ``directory`` holds the
    plugin's revision files (``revision``, ``down_revision``, ``upgrade()``,
    ``downgrade()``; no ``env.py``), ``name`` (``[a-z][a-z0-9_]*``, usually the
    plugin's) names the version table ``alembic_version_<name>`` that records
    how far they ran, and ``metadata`` (a ``sqlalchemy.MetaData`` with the
    plugin's tables) lets ``hub db revision --autogenerate`` write revisions.
    Storage runs them on SQLite and PostgreSQL at every start, before any other
    plugin's ``hub_setup``, and in ``hub db upgrade``; the tables are then used
    through ``hub.data[DATA_DATABASE]``.  Called before an event loop may
    exist: a plain function.
    """


@hookspec
def hub_setup(hub: Hub) -> None:
    """Prepare: read ``hub.config``, register event listeners, services and message subscriptions.

    Storage restores nodes here: a plugin whose manifest says ``after=("storage",)``
    sets up with the fleet as it was.  Connect to nothing here.
    """


@hookspec
def hub_start(hub: Hub) -> None:
    """Begin taking input: connect to brokers, start background work (``hub.create_task``).

    Only as far as the role allows: ask ``hub.role.takes_input``, ``hub.role.serves_http``,
    ``hub.role.runs_maintenance`` (a one-off command such as ``hub nodes`` allows none).
    """


@hookspec
def hub_demo(hub: Hub, nodes: int) -> None:
    """``hub run --demo N``: start ``nodes`` simulated devices against this hub (after ``hub_start``)."""


@hookspec
def hub_stop(hub: Hub) -> None:
    """Stop taking input.  Transports stop consuming and acknowledge only what is durable."""


@hookspec
def hub_shutdown(hub: Hub) -> None:
    """Flush and close: write what is buffered, close connections.  Runs after every ``hub_stop``."""


@hookspec
def hub_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add options to ``hub run`` (``parser.add_argument(…)``), e.g. the http plugin's ``--http-port``.

    Give options a default of None so :func:`hub_run_config` can tell whether
    the user set them.
    """


@hookspec
def hub_run_config(config: dict[str, Any], args: argparse.Namespace) -> None:
    """Apply this plugin's ``hub run`` options to the validated config (mutate ``config``), before start.

    Command-line options win over config.yaml; validate in the option's argparse
    ``type`` so a bad value is a usage error.
    """


@hookspec
def hub_http_routes(hub: Hub, register: Callable[..., None]) -> None:
    """Add HTTP routes (pages, API endpoints) to the built-in http server; called when it starts.

    Call ``register(method, path, handler, auth=True, doc=None)``:

    * ``path`` uses aiohttp's syntax (``/nodes/{node_id}``); ``/api/…`` is the API's space,
      pages belong elsewhere (``/``, ``/nodes/…``).
    * ``handler(request)`` is a coroutine taking an ``aiohttp.web.Request`` and returning a
      response.  For an authenticated route the caller is
      ``request[hub.plugins.http.PRINCIPAL_KEY]`` (``.user.username``, ``.kind``).  Raise
      :mod:`hub.web` errors (``ApiError``, ``BadRequest``, ``NotFound``, …) to answer in the
      API's error shape ``{"error": {"code", "message"}}``; ``hub.web`` also validates bodies
      and queries and makes the OpenAPI ``doc``.
    * ``auth=True`` (the default) requires ``Authorization: Bearer <token>``; ``auth=False``
      makes the route public — only for what must load before sign-in (the sign-in page,
      the single-page app shell), never for data.
    * ``doc``: an OpenAPI operation object; routes that have one appear in
      ``/api/openapi.json``.
    """


@hookspec
def hub_http_static(hub: Hub, register: Callable[..., None]) -> None:
    """Serve a directory of static files (scripts, styles, vendored libraries); called when the http server starts.

    Call ``register(prefix, directory, auth=False)``: files under ``directory`` are
    served at ``prefix/…`` (symlinks are not followed, ``..`` cannot escape).  Static
    assets are public by default because the browser loads them before the user signs
    in; pass ``auth=True`` for files that need a bearer token.
    """
