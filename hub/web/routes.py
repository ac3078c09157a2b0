"""An HTTP endpoint as the http plugin serves it: the built-in API's and every plugin's alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: method, path (aiohttp syntax, ``{name}`` placeholders), handler, auth flag, docs.

    A plugin hands its routes to the ``hub_http_routes`` hook's ``register(method, path, handler, auth=…,
    doc=…)``; keeping them as a list of these next to the handlers keeps each endpoint and its OpenAPI
    operation in one place.
    """

    method: str
    path: str
    handler: Handler
    auth: bool = True
    doc: dict[str, Any] | None = None
    """The OpenAPI operation object; routes without one are left out of /api/openapi.json."""
