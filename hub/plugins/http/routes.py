"""Route declarations shared by the API modules, the server and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .auth.manager import Principal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("hub_principal", Principal)
"""Request key: the :class:`~.auth.manager.Principal` (user, token) of an authenticated request."""


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: method, path (aiohttp syntax, ``{name}`` placeholders), handler, auth flag, docs."""

    method: str
    path: str
    handler: Handler
    auth: bool = True
    doc: dict[str, Any] | None = None
    """The OpenAPI operation object; routes without one are left out of /api/openapi.json."""
