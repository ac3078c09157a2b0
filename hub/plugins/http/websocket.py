"""``/api/websocket``: Home Assistant's WebSocket protocol, for the dashboard and scripts.

Server ``{"type": "auth_required"}`` → client ``{"type": "auth", "access_token": "…"}`` →
``auth_ok`` (or ``auth_invalid`` and close).  Then every client message is
``{"id": n, "type": …}`` with ``n`` increasing; answers are
``{"id": n, "type": "result", "success": true, "result": …}`` or
``{"id": n, "type": "result", "success": false, "error": {"code", "message"}}``.
Commands: ``ping`` (→ ``pong``), ``subscribe_events`` (``event_type`` default
``*``, optional ``node_id``; then ``{"id": n, "type": "event", "event": …}``),
``unsubscribe_events`` (``subscription``: the id of the subscribe), ``get_nodes``
(optional ``status``, ``q``, ``area``, ``tag``), ``get_node`` (``node_id``).

Every outgoing message goes through one bounded queue per client, drained by
one writer task per client.  A client that does not read fast enough to keep
its queue under ``websocket_queue_size`` is disconnected (it can reconnect and
fetch the current state): nothing it does slows the event bus, ingestion or
the other clients.  Those disconnects and the messages discarded with them are
counted (``hub_websocket_slow_disconnects_total``,
``hub_websocket_messages_dropped_total``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
import voluptuous as vol
from aiohttp import WSCloseCode, WSMsgType, web

from hub import MATCH_ALL, Hub, InvalidMac, __version__, normalize_mac

from .api_nodes import NODE_FILTERS, node_list
from .auth.manager import AuthManager, Principal
from .errors import ApiError, NotFound, Unauthorized
from .fanout import EventFanout, Subscription
from .middleware import SERVER_KEY
from .routes import Route
from .validation import describe_invalid, json_int, text

_LOGGER = logging.getLogger(__name__)

AUTH_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
MAX_MESSAGE = 64 * 1024

_MESSAGE_ID = json_int(1, 2**53)
_ENVELOPE = vol.Schema({vol.Required("id"): _MESSAGE_ID, vol.Required("type"): str}, extra=vol.ALLOW_EXTRA)
_AUTH = vol.Schema({vol.Required("type"): "auth", vol.Required("access_token"): str}, extra=vol.ALLOW_EXTRA)


def _node_id(value: Any) -> str:
    node_id = text(100, min_length=1)(value)
    try:
        return normalize_mac(node_id)
    except InvalidMac:
        return node_id


class WebSocketHub:
    """Every WebSocket connection of one server, the shared event fan-out and their metrics."""

    def __init__(self, hub: Hub, auth: AuthManager, queue_size: int) -> None:
        self.hub = hub
        self.auth = auth
        self.queue_size = queue_size
        self.fanout = EventFanout(hub.bus, hub.metrics)
        self.connections: set[WsConnection] = set()
        self.slow_disconnects = 0
        self.messages_dropped = 0
        self._clients = hub.metrics.gauge("websocket_clients", "Authenticated WebSocket clients connected")
        self._slow = hub.metrics.counter("websocket_slow_disconnects", "WebSocket clients disconnected as too slow")
        self._dropped = hub.metrics.counter(
            "websocket_messages_dropped", "Messages discarded when a too-slow WebSocket client was disconnected"
        )
        auth.revoked_listeners.append(self._revoked)

    def added(self, connection: WsConnection) -> None:
        """A client authenticated."""
        self.connections.add(connection)
        self._clients.set(len(self.connections))

    def removed(self, connection: WsConnection) -> None:
        """A client went away."""
        self.connections.discard(connection)
        self._clients.set(len(self.connections))

    def too_slow(self, dropped: int) -> None:
        """Count a slow-client disconnect and the messages it lost."""
        self.slow_disconnects += 1
        self.messages_dropped += dropped
        self._slow.inc()
        self._dropped.inc(dropped)

    def stats(self) -> dict[str, int]:
        """Figures for /api/system."""
        return {
            "clients": len(self.connections),
            "slow_disconnects": self.slow_disconnects,
            "messages_dropped": self.messages_dropped,
        }

    async def close_all(self) -> None:
        """Close every connection (server shutdown)."""
        await asyncio.gather(
            *(conn.close(WSCloseCode.GOING_AWAY, "hub stopping") for conn in list(self.connections)),
            return_exceptions=True,
        )
        self.fanout.close()

    def _revoked(self, token_ids: set[str]) -> None:
        for conn in list(self.connections):
            if conn.principal is not None and conn.principal.root_id in token_ids:
                conn.close_soon(WSCloseCode.POLICY_VIOLATION, "token revoked")


class WsConnection:
    """One client: authentication, its commands and subscriptions, its outgoing queue and writer."""

    def __init__(self, wshub: WebSocketHub, request: web.Request) -> None:
        self._wshub = wshub
        self._request = request
        self.ws = web.WebSocketResponse(heartbeat=55.0, max_msg_size=MAX_MESSAGE, compress=False, timeout=CLOSE_TIMEOUT)
        self.principal: Principal | None = None
        self._queue: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._last_id = 0
        self._subscriptions: dict[int, Subscription] = {}

    # --- outgoing ----------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Queue a complete message; a full queue means the client is too slow and is disconnected."""
        if self._closed:
            return
        if len(self._queue) >= self._wshub.queue_size:
            dropped = len(self._queue) + 1
            self._queue.clear()
            self._closed = True
            self._wshub.too_slow(dropped)
            self._abort()
            return
        self._queue.append(data)
        self._wakeup.set()

    async def _write(self) -> None:
        queue = self._queue
        try:
            while True:
                while queue:
                    await self.ws.send_frame(queue.popleft(), WSMsgType.TEXT)
                self._wakeup.clear()
                await self._wakeup.wait()
        except ConnectionError:
            self._abort()

    def _abort(self) -> None:
        """Drop the connection at once: no close handshake with a client that is not reading."""
        self._closed = True
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, message: str) -> None:
        """Close with a close frame if the client answers in time, else drop the connection."""
        self._closed = True
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=message.encode())
        except (TimeoutError, ConnectionError):
            self._abort()

    def close_soon(self, code: int, message: str) -> None:
        """:meth:`close` from synchronous code (a revoked token)."""
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self.close(code, message))

    # --- the connection's life -----------------------------------------------------------------
    async def run(self) -> web.WebSocketResponse:
        """Serve the connection until it closes."""
        ws = self.ws
        await ws.prepare(self._request)
        self.principal = await self._authenticate()
        if self.principal is None:
            await self.close(WSCloseCode.POLICY_VIOLATION, "authentication failed")
            return ws
        self._wshub.added(self)
        self._writer = asyncio.get_running_loop().create_task(self._write(), name="http:websocket-writer")
        try:
            async for msg in ws:
                if self._closed:
                    break
                if msg.type == WSMsgType.TEXT:
                    self._receive(msg.data)
                else:
                    self._error(None, "invalid_format", "messages must be JSON text")
        finally:
            self._closed = True
            for sub in self._subscriptions.values():
                self._wshub.fanout.unsubscribe(sub)
            self._subscriptions.clear()
            self._wshub.removed(self)
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        return ws

    async def _authenticate(self) -> Principal | None:
        ws = self.ws
        await ws.send_frame(orjson.dumps({"type": "auth_required", "hub_version": __version__}), WSMsgType.TEXT)
        try:
            async with asyncio.timeout(AUTH_TIMEOUT):
                msg = await ws.receive()
        except TimeoutError:
            await self._auth_invalid("authentication timed out")
            return None
        if msg.type != WSMsgType.TEXT:
            return None
        try:
            token = _AUTH(orjson.loads(msg.data))["access_token"]
        except (orjson.JSONDecodeError, vol.Invalid):
            await self._auth_invalid('expected {"type": "auth", "access_token": "…"}')
            return None
        try:
            principal = self._wshub.auth.authenticate(token)
        except Unauthorized as err:
            await self._auth_invalid(err.message)
            return None
        await ws.send_frame(orjson.dumps({"type": "auth_ok", "hub_version": __version__}), WSMsgType.TEXT)
        return principal

    async def _auth_invalid(self, message: str) -> None:
        try:
            await self.ws.send_frame(orjson.dumps({"type": "auth_invalid", "message": message}), WSMsgType.TEXT)
        except ConnectionError:
            pass

    # --- commands -------------------------------------------------------------------------------
    def _receive(self, raw: str) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._error(None, "invalid_format", "message is not valid JSON")
            return
        if not isinstance(message, dict):
            self._error(None, "invalid_format", "message must be a JSON object")
            return
        try:
            envelope = _ENVELOPE(message)
        except vol.Invalid as err:
            msg_id = message.get("id") if isinstance(message.get("id"), int) else None
            self._error(msg_id, "invalid_format", describe_invalid(err, "field"))
            return
        msg_id, kind = envelope.pop("id"), envelope.pop("type")
        if msg_id <= self._last_id:
            self._error(msg_id, "id_reuse", "message ids must increase")
            return
        self._last_id = msg_id
        command = COMMANDS.get(kind)
        if command is None:
            self._error(msg_id, "unknown_command", f"unknown command {kind!r}")
            return
        schema, handler = command
        try:
            handler(self, msg_id, schema(envelope))
        except vol.Invalid as err:
            self._error(msg_id, "invalid_format", describe_invalid(err, "field"))
        except ApiError as err:
            self._error(msg_id, err.code, err.message)

    def _result(self, msg_id: int, result: Any = None) -> None:
        self.send(orjson.dumps({"id": msg_id, "type": "result", "success": True, "result": result}))

    def _error(self, msg_id: int | None, code: str, message: str) -> None:
        self.send(
            orjson.dumps(
                {"id": msg_id, "type": "result", "success": False, "error": {"code": code, "message": message}}
            )
        )

    def ping(self, msg_id: int, _data: dict[str, Any]) -> None:
        """``ping`` → ``pong``."""
        self.send(orjson.dumps({"id": msg_id, "type": "pong"}))

    def subscribe_events(self, msg_id: int, data: dict[str, Any]) -> None:
        """Stream events (of one type, of one node) as ``{"id": msg_id, "type": "event", …}``."""
        self._subscriptions[msg_id] = self._wshub.fanout.subscribe(
            self, msg_id, data["event_type"], data.get("node_id")
        )
        self._result(msg_id)

    def unsubscribe_events(self, msg_id: int, data: dict[str, Any]) -> None:
        """Stop the subscription made by message ``subscription``."""
        sub = self._subscriptions.pop(data["subscription"], None)
        if sub is None:
            raise NotFound(f"no subscription {data['subscription']}")
        self._wshub.fanout.unsubscribe(sub)
        self._result(msg_id)

    def get_nodes(self, msg_id: int, data: dict[str, Any]) -> None:
        """What ``GET /api/nodes`` returns."""
        self._result(msg_id, node_list(self._wshub.hub, data))

    def get_node(self, msg_id: int, data: dict[str, Any]) -> None:
        """What ``GET /api/nodes/{node_id}`` returns."""
        node = self._wshub.hub.registry.get(data["node_id"])
        if node is None:
            raise NotFound(f"no node {data['node_id']!r}", code="node_not_found")
        self._result(msg_id, node.as_dict())


CommandHandler = Callable[[WsConnection, int, dict[str, Any]], None]

COMMANDS: dict[str, tuple[vol.Schema, CommandHandler]] = {
    "ping": (vol.Schema({}), WsConnection.ping),
    "subscribe_events": (
        vol.Schema(
            {vol.Optional("event_type", default=MATCH_ALL): text(100, min_length=1), vol.Optional("node_id"): _node_id}
        ),
        WsConnection.subscribe_events,
    ),
    "unsubscribe_events": (vol.Schema({vol.Required("subscription"): _MESSAGE_ID}), WsConnection.unsubscribe_events),
    "get_nodes": (
        vol.Schema(NODE_FILTERS),
        WsConnection.get_nodes,
    ),
    "get_node": (vol.Schema({vol.Required("node_id"): _node_id}), WsConnection.get_node),
}


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    """Upgrade and serve one connection (authentication happens inside the protocol)."""
    return await WsConnection(request.app[SERVER_KEY].websockets, request).run()


ROUTES = [Route("GET", "/api/websocket", websocket_handler, auth=False)]
