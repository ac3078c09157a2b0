"""The request key under which the auth middleware leaves who is asking, for handlers and the audit trail."""

from __future__ import annotations

from aiohttp import web

from .auth.manager import Principal

PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("hub_principal", Principal)
"""Request key: the :class:`~.auth.manager.Principal` (user, token) of an authenticated request."""
