"""``/api/websocket``: Home Assistant's WebSocket protocol, for the dashboard and scripts.

Server ``{"type": "auth_required"}`` → client ``{"type": "auth", "access_token": "…"}`` →
``auth_ok`` (or ``auth_invalid`` and close).  Then every client message is
``{"id": n, "type": …}`` with ``n`` increasing; answers are
``{"id": n, "type": "result", "success": true, "result": …}`` or
``{"id": n, "type": "result", "success": false, "error": {"code", "message"}}``.
Commands: ``ping`` (→ ``pong``), ``subscribe_events`` (``event_type`` default
``*``, optional ``node_id``; then ``{"id": n, "type": "event", "event": …}``),
``unsubscribe_events`` (``subscription``: the id of the subscribe), ``get_nodes``
(optional ``status``, ``q``, ``area``, ``tag``, and ``limit``/``cursor``: a page,
see :mod:`.node_pages`), ``get_node`` (``node_id``), ``get_health`` (what
``/api/health`` says; changes follow as ``health_changed`` events).  A client has at most
``websocket_max_subscriptions`` subscriptions; each is dropped in constant time.

Every outgoing message goes through one bounded queue per client, drained by
one writer task per client.  A client that does not read fast enough to keep
its queue under ``websocket_queue_bytes`` bytes and ``websocket_queue_size``
messages is disconnected (close code 1013, "try again later", with the reason;
it can reconnect and fetch the current state), and its queue is freed at once:
nothing it does slows the event bus, ingestion or the other clients.  Those
disconnects and the messages discarded with them are counted
(``hub_websocket_slow_disconnects_total``, ``hub_websocket_messages_dropped_total``).

A client's commands run one at a time, in order.  While a ``get_nodes`` page
is encoded (yielding to the event loop between chunks), the events for that
client are held back and sent right after the page, so a client that loads
pages after subscribing never applies an event older than the page it then
receives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import voluptuous as vol
from aiohttp import WSCloseCode, WSMsgType, web

from hub import MATCH_ALL, Hub, InvalidMac, __version__, normalize_mac
from hub.web import ApiError, NotFound, Route, Unauthorized, describe_invalid, json_int, text

from .api_nodes import CURSOR, NODE_FILTERS
from .auth.manager import AuthManager, Principal
from .fanout import EventFanout, Subscription
from .middleware import SERVER_KEY
from .node_pages import DEFAULT_LIMIT, MAX_LIMIT, encode_node, encode_page, select_page
from .ws_outbox import Outbox

_LOGGER = logging.getLogger(__name__)

AUTH_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
SLOW_CLOSE_TIMEOUT = 5.0
"""How long a too-slow client gets to read up to its close frame before the connection is dropped."""
MAX_MESSAGE = 64 * 1024

_RESULT = b'{"id":%d,"type":"result","success":true,"result":'
"""The start of a successful result whose JSON is already encoded (add it and ``}``)."""
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

    def __init__(self, hub: Hub, auth: AuthManager, queue_size: int, queue_bytes: int, max_subscriptions: int) -> None:
        self.hub = hub
        self.auth = auth
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes
        self.max_subscriptions = max_subscriptions
        self.fanout = EventFanout(hub.bus, hub.metrics)
        self.connections: set[WsConnection] = set()
        self.health: Callable[[], Awaitable[dict[str, Any]]] | None = None
        """What ``get_health`` answers (the server's :class:`~.api_health.HealthWatch`)."""
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
            "queued_bytes": sum(conn.outbox.queued_bytes for conn in self.connections),
            "subscriptions": sum(len(conn.subscriptions) for conn in self.connections),
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
        self.outbox = Outbox(
            self.ws,
            max_messages=wshub.queue_size,
            max_bytes=wshub.queue_bytes,
            overflow=self._too_slow,
            broken=self._abort,
        )
        self.send = self.outbox.send
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._last_id = 0
        self.subscriptions: dict[int, Subscription] = {}
        self._detached = False

    # --- outgoing ----------------------------------------------------------------------------
    def _too_slow(self, dropped: int) -> None:
        """The outbox overflowed (and freed its queue): count it, detach and close with 1013 and the reason.

        Called from inside an event's delivery, so the subscriptions go in the closing task,
        not here (the fan-out is iterating them).
        """
        self._wshub.too_slow(dropped)
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self._close_slow())

    async def _close_slow(self) -> None:
        self._detach()
        reason = f"too slow: over {self._wshub.queue_bytes} bytes or {self._wshub.queue_size} messages waiting"
        await self.close(WSCloseCode.TRY_AGAIN_LATER, reason, SLOW_CLOSE_TIMEOUT)

    def _detach(self) -> None:
        """Stop costing anything: no queue, no subscriptions, not counted as a client (the socket may linger)."""
        if self._detached:
            return
        self._detached = True
        self.outbox.close()
        fanout = self._wshub.fanout
        for sub in self.subscriptions.values():
            fanout.unsubscribe(sub)
        self.subscriptions.clear()
        self._wshub.removed(self)

    def _abort(self) -> None:
        """Drop the connection at once: no close handshake with a client that is not reading."""
        self.outbox.close()
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, message: str, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close with a close frame if the client answers in time, else drop the connection."""
        self.outbox.close()
        try:
            async with asyncio.timeout(timeout):
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
        self._writer = asyncio.get_running_loop().create_task(self.outbox.run(), name="http:websocket-writer")
        try:
            async for msg in ws:
                if self.outbox.closed:
                    break
                if msg.type == WSMsgType.TEXT:
                    await self._receive(msg.data)
                else:
                    self._error(None, "invalid_format", "messages must be JSON text")
        finally:
            self._detach()
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
    async def _receive(self, raw: str) -> None:
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
            pending = handler(self, msg_id, schema(envelope))
            if pending is not None:
                await pending
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
        limit = self._wshub.max_subscriptions
        if len(self.subscriptions) >= limit:
            raise ApiError(
                f"at most {limit} subscriptions per connection (http: websocket_max_subscriptions); "
                "unsubscribe one first, or subscribe to all nodes of an event type instead of one node each",
                code="too_many_subscriptions",
            )
        self.subscriptions[msg_id] = self._wshub.fanout.subscribe(self, msg_id, data["event_type"], data.get("node_id"))
        self._result(msg_id)

    def unsubscribe_events(self, msg_id: int, data: dict[str, Any]) -> None:
        """Stop the subscription made by message ``subscription``."""
        sub = self.subscriptions.pop(data["subscription"], None)
        if sub is None:
            raise NotFound(f"no subscription {data['subscription']}")
        self._wshub.fanout.unsubscribe(sub)
        self._result(msg_id)

    async def get_nodes(self, msg_id: int, data: dict[str, Any]) -> None:
        """A page of what ``GET /api/nodes`` returns; the events meanwhile follow it (module docstring)."""
        hub = self._wshub.hub
        page = select_page(hub, data, data.pop("cursor", None), data.pop("limit"))
        self.outbox.hold()
        body = None
        try:
            body = await encode_page(hub, page)
        finally:
            self.outbox.release(_RESULT % msg_id + body + b"}" if body is not None else None)

    async def get_health(self, msg_id: int, _data: dict[str, Any]) -> None:
        """What ``GET /api/health`` says (``{"status", "checks"}``); changes follow as ``health_changed`` events."""
        health = self._wshub.health
        self._result(msg_id, await health() if health is not None else {"status": "ok", "checks": {}})

    def get_node(self, msg_id: int, data: dict[str, Any]) -> None:
        """What ``GET /api/nodes/{node_id}`` returns."""
        node = self._wshub.hub.registry.get(data["node_id"])
        if node is None:
            raise NotFound(f"no node {data['node_id']!r}", code="node_not_found")
        self.send(_RESULT % msg_id + encode_node(node) + b"}")


CommandHandler = Callable[[WsConnection, int, dict[str, Any]], Awaitable[None] | None]

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
        vol.Schema(
            {
                **NODE_FILTERS,
                vol.Optional("limit", default=DEFAULT_LIMIT): json_int(1, MAX_LIMIT),
                vol.Optional("cursor"): CURSOR,
            }
        ),
        WsConnection.get_nodes,
    ),
    "get_node": (vol.Schema({vol.Required("node_id"): _node_id}), WsConnection.get_node),
    "get_health": (vol.Schema({}), WsConnection.get_health),
}


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    """Upgrade and serve one connection (authentication happens inside the protocol)."""
    return await WsConnection(request.app[SERVER_KEY].websockets, request).run()


ROUTES = [Route("GET", "/api/websocket", websocket_handler, auth=False)]
