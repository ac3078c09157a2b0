"""The aiohttp application and its listening socket: routes, plugin contributions, TLS, start and stop.

The server collects the built-in API routes and whatever plugins contribute
through the ``hub_http_routes`` and ``hub_http_static`` hooks, each with a
flag saying whether it needs a bearer token, then listens on the configured
address (127.0.0.1 by default).  ``hub.data[DATA_HTTP_URL]`` tells other
plugins (and tests) where it listens.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource, AbstractRoute

from hub import DATA_HTTP_URL, Hub, StartupError, __version__, is_loopback, url_host
from hub.web import Handler, Route

from . import (
    api_areas,
    api_audit,
    api_auth,
    api_bulk_commands,
    api_commands,
    api_health,
    api_history,
    api_nodes,
    api_system,
    metrics,
    openapi,
    websocket,
)
from .announce import OnboardingAnnouncer, onboarding_message
from .audit import AuditTrail
from .auth.guard import LoginGuard
from .auth.manager import AuthManager
from .auth.onboarding import Onboarding
from .auth.store import AuthStore
from .middleware import SERVER_KEY, auth_middleware, compression_middleware, errors_middleware

_LOGGER = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
"""Largest request body accepted (the API's bodies are a few hundred bytes)."""


class HttpServer:
    """One hub's HTTP server; see the module docstring."""

    def __init__(self, hub: Hub, config: dict[str, Any]) -> None:
        self.hub = hub
        self.config = config
        self.trusted_proxies = config["trusted_proxies"]
        self.guard = LoginGuard(
            hub.metrics,
            hub.clock,
            threshold=config["login_attempts_threshold"],
            ban_time=config["ban_time"],
            parallel=config["password_checks"],
            queue=config["password_check_queue"],
        )
        self.auth = AuthManager(
            AuthStore.in_dir(hub.data_dir),
            hub.clock,
            access_lifetime=config["access_token_lifetime"],
            refresh_lifetime=config["refresh_token_lifetime"],
            session_lifetime=config["session_lifetime"],
            max_sessions=config["max_sessions_per_user"],
            guard=self.guard,
        )
        self.onboarding = Onboarding(self.auth, hub.clock, config["onboarding_link_lifetime"])
        for token in self.auth.tokens_of():  # where people signed in from keeps its lane after a restart
            self.guard.remember(token.address)
        self._announcer: OnboardingAnnouncer | None = None
        self.websockets = websocket.WebSocketHub(
            hub,
            self.auth,
            config["websocket_queue_size"],
            config["websocket_queue_bytes"],
            config["websocket_max_subscriptions"],
        )
        self.stats = api_system.SystemStats(hub, self.websockets)
        self.database_probe = api_health.DatabaseProbe(hub)
        self.health_watch = api_health.HealthWatch(hub, self.database_probe, lambda: len(self.websockets.connections))
        self.websockets.health = self.health_watch.evaluate
        self.routes: list[Route] = []
        self.url: str | None = None
        self._public_routes: set[AbstractRoute] = set()
        self._public_resources: set[AbstractResource] = set()
        self._responses = hub.metrics.counter("http_responses", "HTTP responses sent, by status code", ["status"])
        self._runner: web.AppRunner | None = None
        self.app = web.Application(
            middlewares=[compression_middleware, errors_middleware, auth_middleware], client_max_size=MAX_BODY
        )
        self.app[SERVER_KEY] = self
        self.audit = AuditTrail(hub)
        self.app.on_shutdown.append(self._on_shutdown)
        for module in (
            api_auth,
            api_audit,
            api_nodes,
            api_areas,
            api_commands,
            api_bulk_commands,
            api_history,
            api_health,
            api_system,
            websocket,
            metrics,
            openapi,
        ):
            for route in module.ROUTES:
                self.add(route)

    # --- routes ---------------------------------------------------------------------------
    def add(self, route: Route) -> None:
        """Serve ``route`` (and list it in the OpenAPI document when it has a ``doc``)."""
        registered = self.app.router.add_route(route.method, route.path, route.handler)
        if not route.auth:
            self._public_routes.add(registered)
        self.routes.append(route)

    def add_route(
        self, method: str, path: str, handler: Handler, *, auth: bool = True, doc: dict[str, Any] | None = None
    ) -> None:
        """The ``register`` callback of the ``hub_http_routes`` hook."""
        self.add(Route(method.upper(), path, handler, auth, doc))

    def add_static(self, prefix: str, directory: str | Path, *, auth: bool = False) -> None:
        """The ``register`` callback of the ``hub_http_static`` hook: serve the files under ``directory``."""
        resource = self.app.router.add_static(prefix, Path(directory), follow_symlinks=False)
        if not auth:
            self._public_resources.add(resource)

    def requires_auth(self, request: web.Request) -> bool:
        """False for routes registered as public and for requests no route matched (they become 404/405)."""
        route = request.match_info.route
        if route.resource is None:
            return False
        return route not in self._public_routes and route.resource not in self._public_resources

    def count_response(self, status: int) -> None:
        """Count one response by status code (``hub_http_responses_total``)."""
        self._responses.labels(str(status)).inc()

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Collect plugin routes, listen, and announce the URL (and the onboarding link if needed)."""
        self.audit.start()
        await self.hub.plugins.call_async("hub_http_routes", hub=self.hub, register=self.add_route)
        await self.hub.plugins.call_async("hub_http_static", hub=self.hub, register=self.add_static)
        host, port = self.config["host"], self.config["port"]
        ssl_context = self._ssl_context()
        # aiohttp closes a connection that has not sent a whole request within keepalive_timeout of
        # connecting (or of its last response), so it doubles as the header-read timeout against slowloris.
        self._runner = web.AppRunner(self.app, shutdown_timeout=5.0, keepalive_timeout=self.config["idle_timeout"])
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            raise StartupError(
                f"http: cannot listen on {host}:{port}: {err.strerror or err}. Another program (another hub?) may "
                "be using the port: set `http: port:` in config.yaml or run `hub run --http-port PORT`"
            ) from err
        bound_port = self._runner.addresses[0][1]
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://{url_host(host)}:{bound_port}"
        self.hub.data[DATA_HTTP_URL] = self.url
        self.stats.start()
        self.health_watch.start()
        _LOGGER.info("HTTP API listening on %s (hub %s)", self.url, __version__)
        if not ssl_context and not is_loopback(host):
            _LOGGER.warning(
                "http: serving plain HTTP on %s: passwords and tokens cross the network unencrypted; "
                "set ssl_certificate/ssl_key or put a TLS proxy in front",
                host,
            )
        self._announce_onboarding()

    async def stop(self) -> None:
        """Close WebSockets, stop listening, finish in-flight requests (5 s at most)."""
        self.stats.stop()
        self.health_watch.stop()
        if self._announcer is not None:
            self._announcer.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.hub.data.pop(DATA_HTTP_URL, None)
        await self.audit.close()

    async def _on_shutdown(self, _app: web.Application) -> None:
        await self.websockets.close_all()

    def _ssl_context(self) -> ssl.SSLContext | None:
        certificate, key = self.config.get("ssl_certificate"), self.config.get("ssl_key")
        if not certificate:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(certificate, key)
        except (OSError, ssl.SSLError) as err:
            raise StartupError(f"http: cannot load ssl_certificate {certificate} / ssl_key {key}: {err}") from err
        return context

    def _announce_onboarding(self) -> None:
        token = self.onboarding.start()
        if token is None:
            return
        lifetime = int(self.config["onboarding_link_lifetime"] // 60)
        self._announcer = OnboardingAnnouncer(self.hub, onboarding_message(self.url, token, lifetime))
