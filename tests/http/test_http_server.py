"""The listening socket: TLS, a taken port, loopback by default."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from hub.core.const import DATA_HTTP_URL
from hub.core.errors import StartupError
from hub.plugins.http.config import CONFIG_SCHEMA, DEFAULT_HOST, DEFAULT_PORT
from hub.testing import wait_until


def test_defaults_are_loopback_and_the_documented_port() -> None:
    config = CONFIG_SCHEMA({})
    assert (config["host"], config["port"]) == (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 8124)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_with_certificate_and_key(hub_factory, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    hub = await hub_factory(
        {"http": {"port": 0, "ssl_certificate": str(cert), "ssl_key": str(key)}}, builtins=("hub.plugins.http",)
    )
    url = hub.data[DATA_HTTP_URL]
    assert url.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=str(cert))
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/api/health", ssl=context) as response:
            assert response.status == 200
        with pytest.raises(aiohttp.ClientError):
            async with session.get(url.replace("https", "http") + "/api/health") as response:
                await response.read()


async def test_taken_port_is_a_clear_startup_error(hub_factory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=rf"cannot listen on 127\.0\.0\.1:{port}.*--http-port"):
            await hub_factory({"http": {"port": port}}, builtins=("hub.plugins.http",))


def test_tls_files_must_come_in_pairs(tmp_path: Path) -> None:
    import voluptuous as vol

    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(vol.Invalid, match="go together"):
        CONFIG_SCHEMA({"ssl_certificate": str(cert)})


async def test_damaged_auth_file_stops_the_hub_with_a_clear_message(hub_factory, tmp_path: Path) -> None:
    hub = await hub_factory({"http": {"port": 0}}, builtins=("hub.plugins.http",), start=False)
    (hub.data_dir / "auth.json").write_text('{"version": 1, "users": [')
    with pytest.raises(StartupError, match="auth.json is damaged"):
        await hub.async_start()


async def test_a_client_trickling_its_headers_is_disconnected(make_api) -> None:
    """Slowloris: a request whose headers never end is cut off after ``idle_timeout``, not kept for an hour."""
    api = await make_api({"idle_timeout": 1})
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /api/health HTTP/1.1\r\nHost: hub\r\n")

    async def closed() -> bool:
        try:
            writer.write(b"X-Slow: 1\r\n")  # one more header line, never the blank line that ends them
            await writer.drain()
            return await asyncio.wait_for(reader.read(1), 0.05) == b""
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    try:
        await wait_until(closed, timeout=10, interval=0.1, message="the server to hang up")
    finally:
        writer.close()
    # A prompt client on a fresh connection is served as usual.
    assert (await api.call("GET", "/api/health", auth=False))[0] == 200
