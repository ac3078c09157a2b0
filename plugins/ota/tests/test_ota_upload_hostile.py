"""Hostile firmware uploads: each a clear 4xx, nothing written outside the firmware folder, nothing left behind.

test_ota_upload.py covers each refusal's reason; this file attacks the upload
as a whole: every kind of bad upload in one sweep with the hub's whole data
folder (and the system's temporary folder) compared before and after, a huge
body refused while it streams (the server answers before most of it was sent),
hostile file names, wrong content types, and a client that hangs up halfway.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import aiohttp
import pytest
from hub_ota.keys import DATA_OTA
from ota_images import build_image
from ota_testing import OtaClient, raw_form

from hub.testing import wait_until

LIMIT = 256 * 1024


def tree(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its size (the database's own files left out: the hub writes them)."""
    return {
        str(path.relative_to(folder)): path.stat().st_size
        for path in folder.rglob("*")
        if path.is_file() and ".db" not in path.name and not path.name.endswith(".lock")
    }


def temporary_uploads() -> set[str]:
    return {path.name for path in Path(tempfile.gettempdir()).iterdir() if "upload" in path.name}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: files are what this module checks, and test_ota_upload.py runs the catalogue on both."""
    return f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
async def client(make_client) -> OtaClient:
    return await make_client({"max_image_size": LIMIT})


def _body(image: bytes, filename: str = "app.bin", part_type: str = "application/octet-stream") -> bytes:
    body, _ = raw_form(image, filename)
    return body.replace(b"Content-Type: application/octet-stream", f"Content-Type: {part_type}".encode(), 1)


BOUNDARY = raw_form(b"", "x")[1]["Content-Type"]

HOSTILE = [
    ("wrong magic", _body(b"\x7fELF" + bytes(4000)), BOUNDARY, 400),
    ("truncated", _body(build_image("1.0.0")[:2000]), BOUNDARY, 400),
    ("empty", _body(b""), BOUNDARY, 400),
    ("over the limit", _body(build_image("1.0.0", payload=LIMIT)), BOUNDARY, 413),
    ("traversal", _body(build_image("1.0.0"), "../../../../tmp/evil-upload.bin"), BOUNDARY, 400),
    ("absolute", _body(build_image("1.0.0"), "/etc/cron.d/evil-upload"), BOUNDARY, 400),
    ("encoded traversal", _body(build_image("1.0.0"), "..%2F..%2Fevil-upload.bin"), BOUNDARY, 400),
    ("backslashes", _body(build_image("1.0.0"), "..\\..\\evil-upload.bin"), BOUNDARY, 400),
    ("NUL in the name", _body(build_image("1.0.0"), "app\x00.bin"), BOUNDARY, 400),
    ("a name of 10 kB", _body(build_image("1.0.0"), "a" * 10_000 + ".bin"), BOUNDARY, 400),
    ("a part of another type", _body(b"<script>", part_type="text/html"), BOUNDARY, 400),
    ("plain text", build_image("1.0.0"), "text/plain", 400),
    ("octet stream", build_image("1.0.0"), "application/octet-stream", 400),
    ("JSON", b'{"file": "x"}', "application/json", 400),
    ("urlencoded form", b"file=abc", "application/x-www-form-urlencoded", 400),
    ("multipart without a boundary", _body(build_image("1.0.0")), "multipart/form-data", 400),
    ("multipart with another boundary", _body(build_image("1.0.0")), "multipart/form-data; boundary=zzz", 400),
    ("no content type", build_image("1.0.0"), None, 400),
]


async def test_every_hostile_upload_is_a_4xx_and_leaves_nothing(client: OtaClient) -> None:
    data = Path(client.hub.data_dir)
    firmware = client.hub.data[DATA_OTA].store.directory
    before, temporary = tree(data), temporary_uploads()
    answers = {}
    for name, body, content_type, _ in HOSTILE:
        headers = {"Content-Type": content_type} if content_type else {}
        status, answer = await client.call("POST", "/api/ota/firmware", data=body, headers=headers)
        answers[name] = (status, answer["error"]["code"] if isinstance(answer, dict) else answer)
    assert {name: status for name, (status, _) in answers.items()} == {name: s for name, _, _, s in HOSTILE}, answers
    assert tree(data) == before, "an upload left a file behind"
    assert list(firmware.iterdir()) == []
    assert temporary_uploads() == temporary
    assert await client.call("GET", "/api/ota/firmware") == (200, {"firmware": []})
    assert not (Path("/tmp") / "evil-upload.bin").exists()


async def test_a_huge_upload_is_refused_while_it_streams_not_after(client: OtaClient) -> None:
    """Declared as 1 GiB and sent in 64 KiB chunks: the 413 arrives after about the limit, the rest is never sent."""
    host, port = client.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    boundary = "hugeboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    image = build_image("1.0.0", payload=LIMIT * 2)
    declared = 1 << 30
    writer.write(
        (
            "POST /api/ota/firmware HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nAuthorization: Bearer {client.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {declared}\r\n\r\n"
        ).encode()
        + head
        + image
    )
    sent = len(head) + len(image)
    response = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
    chunk = bytes(64 * 1024)
    try:
        async with asyncio.timeout(30):
            while not response.done() and sent < declared:
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()
    except (ConnectionError, TimeoutError):
        pass  # the server stopped reading and closed: what it should do
    status_line = (await asyncio.wait_for(response, 30)).split(b"\r\n")[0]
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    # Socket buffers on loopback hold a few MiB; 64 MiB would mean the body was read on after the limit.
    assert sent < LIMIT + 64 * 2**20, f"{sent} bytes sent before the refusal"
    assert list(client.hub.data[DATA_OTA].store.directory.iterdir()) == []


@pytest.mark.parametrize("name", ["\u202egnp.bin", "con.bin", "ordinary name.bin", "ü.bin", ".hidden.bin"])
async def test_odd_but_harmless_names_are_kept_as_names_never_as_paths(client: OtaClient, name: str) -> None:
    body, headers = raw_form(build_image("1.0.0"), name)
    status, answer = await client.call("POST", "/api/ota/firmware", data=body, headers=headers)
    assert status in (201, 400), answer
    stored = [path.name for path in client.hub.data[DATA_OTA].store.directory.iterdir()]
    if status == 201:
        assert stored == [answer["sha256"]]  # stored under its hash; the name is only a label
    else:
        assert answer["error"]["code"] == "unsafe_name" and stored == []


async def test_a_client_that_hangs_up_halfway_leaves_nothing(client: OtaClient) -> None:
    firmware = client.hub.data[DATA_OTA].store.directory
    image = build_image("1.0.0", payload=LIMIT // 2)
    body, headers = raw_form(image, "app.bin")

    async def half() -> object:
        yield body[: len(body) // 2]
        await asyncio.sleep(0.2)
        raise ConnectionAbortedError("the client hangs up")

    headers["Authorization"] = f"Bearer {client.token}"
    headers["Content-Length"] = str(len(body))
    async with aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ClientError, ConnectionAbortedError)):
            await session.post(client.url + "/api/ota/firmware", data=half(), headers=headers)

    # The server notices the hang-up when it next reads, then removes the temporary.
    await wait_until(lambda: list(firmware.iterdir()) == [], message="the half upload's temporary to be removed")
    assert (await client.upload(image))[0] == 201  # and the next upload is fine
