"""The hub plugin: hook implementations only (the shell and its headers live in :mod:`.shell`).

Registered through the ``hub`` entry-point group of the ``hub-dashboard``
distribution.  The pages are public because the browser must load them before
it has a token; they contain no data, which the app fetches from the API with
its bearer token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub import HubKey, Manifest, hookimpl

from .config import CONFIG_SCHEMA, SECTION
from .shell import PAGE_PATHS, STATIC_DIR, AppShell

if TYPE_CHECKING:
    from hub import Hub

MANIFEST = Manifest(name="dashboard", requires=("http",), sections=(SECTION,))
"""The pages are served by the built-in http plugin: without it there is no dashboard."""

DATA_SHELL: HubKey[AppShell] = HubKey("dashboard.shell")
"""Hub.data key of the :class:`~.shell.AppShell` (shared by the two hooks of one server start)."""


def _shell(hub: Hub) -> AppShell:
    shell = hub.data.get(DATA_SHELL)
    if shell is None:
        shell = hub.data[DATA_SHELL] = AppShell(stale_after=hub.config[SECTION]["stale_after"])
    return shell


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``dashboard:`` section."""
    return {SECTION: CONFIG_SCHEMA}


@hookimpl
def hub_http_routes(hub: Hub, register: Callable[..., None]) -> None:
    """Every page path serves the app shell (public: it holds no data)."""
    shell = _shell(hub)
    for path in PAGE_PATHS:
        register("GET", path, shell.page, auth=False)


@hookimpl
def hub_http_static(hub: Hub, register: Callable[..., None]) -> None:
    """The scripts, styles and vendored uPlot, under a URL that changes whenever a file does."""
    register(_shell(hub).assets_url, STATIC_DIR)
