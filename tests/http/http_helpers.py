"""Helpers for the http plugin's tests: the API client wrapper, a hand-moved clock, error-shape checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp

from hub import Hub
from hub.plugins.http import DATA_SERVER
from hub.plugins.http.server import HttpServer
from hub.testing import FakeClock

OWNER = "owner"
OWNER_PASSWORD = "correct horse battery staple"


@dataclass
class Api:
    """A running hub's HTTP API, a real client session, and the owner's credentials."""

    hub: Hub
    url: str
    session: aiohttp.ClientSession
    clock: FakeClock
    token: str = ""
    refresh_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def server(self) -> HttpServer:
        return self.hub.data[DATA_SERVER]

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token if token is None else token}"}

    async def call(
        self, method: str, path: str, *, token: str | None = None, auth: bool = True, **kwargs: Any
    ) -> tuple[int, Any]:
        """One request; returns (status, parsed JSON body or text or None)."""
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers.update(self.headers(token))
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as response:
            raw = await response.read()
            if not raw:
                return response.status, None
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, raw.decode()

    async def refresh(self) -> None:
        """Replace the owner's access token, and the rotated refresh token, with fresh ones."""
        status, body = await self.call(
            "POST", "/api/auth/token", auth=False, json={"refresh_token": self.refresh_token}
        )
        assert status == 200, body
        self.token, self.refresh_token = body["access_token"], body["refresh_token"]

    async def ws(self, token: str | None = None) -> aiohttp.ClientWebSocketResponse:
        """A WebSocket connection that has completed the auth handshake."""
        ws = await self.session.ws_connect(self.url + "/api/websocket")
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": self.token if token is None else token})
        reply = await ws.receive_json()
        assert reply["type"] == "auth_ok", reply
        return ws


def assert_error(status: int, body: Any, expected_status: int, code: str | None = None) -> None:
    """The response is an error in the one shape (with ``code`` if given)."""
    assert status == expected_status, (status, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
