"""Firmware upload over REST (multipart, streamed) and the catalogue: good images, every refusal, nothing half-written.

Each test runs on SQLite and on PostgreSQL; the store is the hub's real firmware directory.
"""

from __future__ import annotations

import hashlib
import stat

import pytest
from hub_ota.events import EVENT_OTA_FIRMWARE_CHANGED
from hub_ota.keys import DATA_OTA
from ota_images import build_image
from ota_testing import OtaClient, assert_error, raw_form

from hub import Event


def stored_files(client: OtaClient) -> list[str]:
    """Every file in the firmware directory, temporaries included."""
    return sorted(path.name for path in client.hub.data[DATA_OTA].store.directory.iterdir())


async def test_a_good_image_is_stored_listed_and_recorded_with_who_uploaded_it(client: OtaClient) -> None:
    events: list[Event] = []
    client.hub.bus.listen(EVENT_OTA_FIRMWARE_CHANGED, events.append)
    image = build_image("2.0.0", project="greenhouse")
    status, row = await client.upload(image, version="2.0.0", filename="greenhouse-2.0.0.bin")
    assert status == 201, row
    sha256 = hashlib.sha256(image).hexdigest()
    assert row == {
        "sha256": sha256,
        "version": "2.0.0",
        "chip": "esp32",
        "project": "greenhouse",
        "size": len(image),
        "md5": hashlib.md5(image).hexdigest(),
        "name": "greenhouse-2.0.0.bin",
        "uploaded_by": "owner",
        "uploaded_at": row["uploaded_at"],
    }
    assert stored_files(client) == [sha256]
    path = client.hub.data[DATA_OTA].store.path(sha256)
    assert path.read_bytes() == image and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await client.call("GET", "/api/ota/firmware") == (200, {"firmware": [row]})
    assert await client.call("GET", f"/api/ota/firmware/{sha256}") == (200, row)
    assert [(e.data["action"], e.data["by"], e.data["firmware"]["sha256"]) for e in events] == [
        ("added", "owner", sha256)
    ]


async def test_the_version_defaults_to_the_images_own_and_a_repeat_is_harmless(client: OtaClient) -> None:
    image = build_image("3.1.0")
    status, first = await client.upload(image)  # fields after the file or none at all: both fine
    assert status == 201 and first["version"] == "3.1.0"
    status, again = await client.upload(image, version="3.1.0")
    assert status == 200 and again == first
    assert len(stored_files(client)) == 1


async def test_fields_may_come_before_the_file(client: OtaClient) -> None:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("version", "4.0.0")
    form.add_field("chip", "ESP32-S3")
    form.add_field("file", build_image("4.0.0", chip="esp32s3"), filename="s3.bin")
    status, row = await client.call("POST", "/api/ota/firmware", data=form)
    assert status == 201 and row["chip"] == "esp32s3"


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (b"\x7fELF" + bytes(2000), "not an ESP32 image: first byte 0x7f, expected 0xe9"),
        (build_image("1.0.0")[:3000], "truncated"),
        (b"", "empty file"),
    ],
    ids=["wrong-magic", "truncated", "empty"],
)
async def test_an_invalid_image_is_refused_with_the_validators_reason(
    client: OtaClient, image: bytes, reason: str
) -> None:
    status, body = await client.upload(image, version="1.0.0")
    assert reason in assert_error(status, body, 400, "invalid_firmware")
    assert stored_files(client) == []
    assert await client.call("GET", "/api/ota/firmware") == (200, {"firmware": []})


async def test_an_oversized_upload_is_refused_while_it_streams(make_client) -> None:
    client = await make_client({"max_image_size": 64 * 1024})
    image = build_image("1.0.0", payload=200 * 1024)  # valid, but over the limit
    status, body = await client.upload(image, version="1.0.0")
    assert "over the limit of 65536 bytes" in assert_error(status, body, 413, "firmware_too_large")
    assert stored_files(client) == []
    status, _ = await client.upload(build_image("1.0.0"), version="1.0.0")  # under the limit: fine
    assert status == 201


async def test_an_image_larger_than_the_http_body_limit_streams_in(client: OtaClient) -> None:
    image = build_image("1.0.0", payload=3 * 1024 * 1024)  # the API's JSON bodies are limited to 1 MiB
    status, row = await client.upload(image, version="1.0.0")
    assert status == 201 and row["size"] == len(image)


async def test_a_version_with_other_bytes_is_a_conflict(client: OtaClient) -> None:
    first = build_image("1.0.0", seed=1)
    assert (await client.upload(first, version="1.0.0"))[0] == 201
    status, body = await client.upload(build_image("1.0.0", seed=2), version="1.0.0")
    assert "version 1.0.0 already exists with other bytes" in assert_error(status, body, 409, "version_conflict")
    status, body = await client.upload(first, version="1.0.1")  # the same bytes as another version
    assert_error(status, body, 409, "version_conflict")
    assert stored_files(client) == [hashlib.sha256(first).hexdigest()]


async def test_a_declared_version_must_match_the_images_own(client: OtaClient) -> None:
    status, body = await client.upload(build_image("1.0.0"), version="9.9.9")
    assert "the image says version '1.0.0'" in assert_error(status, body, 409, "version_conflict")
    assert stored_files(client) == []


async def test_an_image_for_another_chip_is_refused(client: OtaClient) -> None:
    status, body = await client.upload(build_image("1.0.0", chip="esp32c3"), chip="esp32")
    assert "built for esp32c3, target is esp32" in assert_error(status, body, 400, "invalid_firmware")
    status, body = await client.upload(build_image("1.0.0"), chip="esp8266")
    assert_error(status, body, 400, "invalid_request")
    assert stored_files(client) == []


@pytest.mark.parametrize("filename", ["../../etc/passwd", "/etc/cron.d/x.bin", "dir/app.bin", "..\\app.bin", ".."])
async def test_path_tricks_in_the_file_name_are_refused(client: OtaClient, filename: str) -> None:
    status, body = await client.upload(build_image("1.0.0"), filename=filename)  # percent-encoded by aiohttp
    assert_error(status, body, 400, "unsafe_name")
    raw, headers = raw_form(build_image("1.0.0"), filename)  # as curl sends it
    status, body = await client.call("POST", "/api/ota/firmware", data=raw, headers=headers)
    assert_error(status, body, 400, "unsafe_name")
    assert stored_files(client) == []


@pytest.mark.parametrize(
    ("send", "message"),
    [
        ({"json": {"file": "x"}}, "multipart/form-data"),
        ({"data": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}}, "malformed multipart"),
    ],
)
async def test_a_body_that_is_not_a_form_is_refused(client: OtaClient, send: dict, message: str) -> None:
    status, body = await client.call("POST", "/api/ota/firmware", **send)
    assert message in assert_error(status, body, 400, "invalid_request")


async def test_form_mistakes_are_refused(client: OtaClient) -> None:
    import aiohttp

    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("version", "1.0.0")
    status, body = await client.call("POST", "/api/ota/firmware", data=form)
    assert "file: required" in assert_error(status, body, 400, "invalid_request")
    status, body = await client.upload(build_image("1.0.0"), colour="red")
    assert "colour: unknown field" in assert_error(status, body, 400, "invalid_request")
    status, body = await client.upload(build_image("1.0.0"), version=" 1.0.0\n")
    assert_error(status, body, 400, "invalid_request")
    assert stored_files(client) == []


async def test_delete(client: OtaClient) -> None:
    image = build_image("1.0.0")
    _, row = await client.upload(image)
    sha256 = row["sha256"]
    assert await client.call("DELETE", f"/api/ota/firmware/{sha256}") == (200, row)
    assert stored_files(client) == []
    status, body = await client.call("DELETE", f"/api/ota/firmware/{sha256}")
    assert_error(status, body, 404, "firmware_not_found")
    status, body = await client.call("GET", "/api/ota/firmware/..%2F..%2Fauth.json")
    assert_error(status, body, 400, "unsafe_name")
    assert (await client.upload(image))[0] == 201  # the version is free again


async def test_every_endpoint_needs_a_token(client: OtaClient) -> None:
    for method, path in [
        ("GET", "/api/ota/firmware"),
        ("POST", "/api/ota/firmware"),
        ("DELETE", "/api/ota/firmware/" + "0" * 64),
    ]:
        status, body = await client.call(method, path, auth=False)
        assert status == 401, (method, path, body)
