"""Helpers shared by the ota plugin's HTTP tests (a module with a unique name, unlike conftest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from hub import DATA_HTTP_URL, Hub

STORAGE_HTTP = ("hub.plugins.storage", "hub.plugins.http")


@dataclass
class OtaClient:
    """A running hub with the ota plugin, a real HTTP client and an owner's API token."""

    hub: Hub
    session: aiohttp.ClientSession
    token: str

    @property
    def url(self) -> str:
        return self.hub.data[DATA_HTTP_URL]

    async def call(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> tuple[int, Any]:
        """One request; (status, parsed JSON, text, or None for an empty body)."""
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as response:
            raw = await response.read()
            if not raw:
                return response.status, None
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, raw

    async def upload(
        self, image: bytes, *, version: str | None = None, filename: str | None = "app.bin", **fields: str
    ) -> tuple[int, Any]:
        """``POST /api/ota/firmware`` as a browser form would send it (the file first, then the fields)."""
        form = aiohttp.FormData()
        form.add_field("file", image, filename=filename, content_type="application/octet-stream")
        if version is not None:
            form.add_field("version", version)
        for name, value in fields.items():
            form.add_field(name, value)
        return await self.call("POST", "/api/ota/firmware", data=form)


def raw_form(image: bytes, filename: str) -> tuple[bytes, dict[str, str]]:
    """A multipart body with the file name exactly as given (as curl -F sends it), and its Content-Type header."""
    boundary = "hubtestboundary7MA4YWxkTrZu0gW"
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')  # a quoted-string: backslash and quote escaped
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def assert_error(status: int, body: Any, expected_status: int, code: str) -> str:
    """The answer is the API's error shape with that status and code; returns the message."""
    assert status == expected_status, body
    assert isinstance(body, dict) and body["error"]["code"] == code, body
    return body["error"]["message"]
