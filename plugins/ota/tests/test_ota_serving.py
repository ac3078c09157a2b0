"""Serving firmware: single-use download links (range requests, expiry, bound to one client) and ESPHome manifests.

Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from hub_ota.keys import DATA_OTA
from hub_ota.links import PURPOSE_COMMAND
from ota_images import build_image
from ota_testing import OtaClient, assert_error

from hub.testing import FakeClock, wait_until

NODE = "24:6f:28:aa:00:01"
OTHER = "24:6f:28:aa:00:02"


async def uploaded(client: OtaClient, version: str = "2.0.0", **build: Any) -> tuple[bytes, dict[str, Any]]:
    image = build_image(version, **build)
    status, row = await client.upload(image)
    assert status == 201, row
    return image, row


async def link(client: OtaClient, sha256: str, lifetime: float = 60.0, node: str = NODE) -> str:
    token = await client.hub.data[DATA_OTA].links.mint(node, sha256, lifetime, purpose=PURPOSE_COMMAND)
    return f"/api/ota/download/{token}"


async def fetch(client: OtaClient, path: str, *, session: aiohttp.ClientSession | None = None, **headers: str):
    """GET without credentials: (status, body bytes, response headers)."""
    async with (session or client.session).get(client.url + path, headers=headers) as response:
        return response.status, await response.read(), response.headers


async def test_a_link_downloads_its_image_without_credentials_until_the_node_reports_a_new_version(
    client: OtaClient,
) -> None:
    image, row = await uploaded(client)
    path = await link(client, row["sha256"])
    status, body, headers = await fetch(client, path)
    assert status == 200 and body == image
    assert headers["Content-Type"] == "application/octet-stream" and headers["Accept-Ranges"] == "bytes"
    assert headers["Cache-Control"] == "no-store"
    # The hub cannot know the bytes arrived: until the node says it installed something, it may fetch again.
    status, body, _ = await fetch(client, path)
    assert status == 200 and body == image
    node = client.hub.registry.get_or_register(NODE)
    client.hub.registry.update_node(node, firmware_version="2.0.0")

    async def spent() -> bool:
        return (await fetch(client, path))[0] == 410

    await wait_until(spent, message="the link spent once the node reported its new version")
    status, body, _ = await fetch(client, path)
    assert b"link_used" in body


async def test_a_download_can_be_resumed_with_range_requests(client: OtaClient) -> None:
    image, row = await uploaded(client, payload=50_000)
    path = await link(client, row["sha256"])
    status, first, headers = await fetch(client, path, Range="bytes=0-9999")
    assert status == 206 and first == image[:10000]
    assert headers["Content-Range"] == f"bytes 0-9999/{len(image)}"
    status, again, _ = await fetch(client, path, Range="bytes=5000-9999")  # a retried chunk: still fine
    assert status == 206 and again == image[5000:10000]
    status, rest, _ = await fetch(client, path, Range="bytes=10000-")
    assert status == 206 and first + rest == image
    assert hashlib.sha256(first + rest).hexdigest() == row["sha256"]
    status, _, _ = await fetch(client, path, Range=f"bytes={len(image)}-")
    assert status == 416


async def test_a_group_link_is_spent_by_the_response_that_carries_the_last_byte(client: OtaClient) -> None:
    image, row = await uploaded(client, payload=50_000)
    path = await link(client, row["sha256"], node="group:greenhouse")
    status, first, _ = await fetch(client, path, Range="bytes=0-9999")
    assert status == 206
    status, rest, _ = await fetch(client, path, Range="bytes=10000-")
    assert status == 206 and first + rest == image

    async def spent() -> bool:
        status, body, _ = await fetch(client, path)
        return status == 410 and b"link_used" in body

    await wait_until(spent, message="the link spent")


async def test_a_link_is_bound_to_the_client_that_started_the_download(client: OtaClient) -> None:
    _, row = await uploaded(client)
    path = await link(client, row["sha256"])
    status, _, _ = await fetch(client, path, Range="bytes=0-99")
    assert status == 206
    # Another machine (another loopback address) cannot use it while the download is under way.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as elsewhere:
        status, body, _ = await fetch(client, path, session=elsewhere)
    assert status == 404 and b"link_not_found" in body
    status, _, _ = await fetch(client, path, Range="bytes=100-")
    assert status == 206


async def test_an_expired_link_is_refused(make_client) -> None:
    clock = FakeClock(1_800_000_000.0)
    client: OtaClient = await make_client(clock=clock)
    _, row = await uploaded(client)
    path = await link(client, row["sha256"], lifetime=300)
    clock.advance(301)
    status, body, _ = await fetch(client, path)
    assert status == 410 and b"link_expired" in body
    clock.advance(2 * 86400)
    assert await client.hub.data[DATA_OTA].links.purge() == 1
    status, _, _ = await fetch(client, path)
    assert status == 404


async def test_nothing_but_the_linked_image_can_be_downloaded(client: OtaClient) -> None:
    _, row = await uploaded(client)
    for path in [
        "/api/ota/download/" + "A" * 43,
        "/api/ota/download/x",
        "/api/ota/download/..%2F..%2Fhub.db",
        f"/api/ota/download/{row['sha256']}",
    ]:
        status, body, _ = await fetch(client, path)
        assert status == 404 and b"link_not_found" in body, path
    path = await link(client, row["sha256"])
    assert (await client.call("DELETE", f"/api/ota/firmware/{row['sha256']}"))[0] == 200
    status, _, _ = await fetch(client, path)
    assert status == 404  # the image is gone


async def manifest_url(client: OtaClient, name: str) -> str:
    status, body = await client.call("GET", f"/api/ota/manifest_url/{name}")
    assert status == 200, body
    return body["url"]


async def test_a_nodes_manifest_advertises_what_it_runs_with_a_single_use_link(client: OtaClient) -> None:
    image, row = await uploaded(client, "2.0.0", project="greenhouse")
    node = client.hub.registry.get_or_register(NODE)
    client.hub.registry.update_node(node, firmware_version="2.0.0")
    url = await manifest_url(client, "24-6F-28-AA-00-01")  # any spelling of the MAC
    assert urlsplit(url).path == "/api/ota/manifest/246f28aa0001.json"
    async with client.session.get(url) as response:
        assert response.status == 200
        manifest = await response.json()
    path = manifest["builds"][0]["ota"]["path"]
    assert manifest == {
        "name": "greenhouse",
        "version": "2.0.0",
        "builds": [{"chipFamily": "ESP32", "ota": {"path": path, "md5": row["md5"], "summary": "greenhouse 2.0.0"}}],
    }
    assert path.startswith(client.url + "/api/ota/download/")
    async with client.session.get(path) as response:
        assert response.status == 200 and await response.read() == image


async def test_a_manifest_needs_its_own_key(client: OtaClient) -> None:
    await uploaded(client, "2.0.0")
    for node_id in (NODE, OTHER):
        node = client.hub.registry.get_or_register(node_id)
        client.hub.registry.update_node(node, firmware_version="2.0.0")
    url = await manifest_url(client, NODE)
    other_key = (await manifest_url(client, OTHER)).split("key=")[1]
    base = url.split("?")[0]
    for wrong in (base, f"{base}?key=", f"{base}?key={other_key}", f"{base}?key={'0' * 64}", f"{base}?key=é"):
        async with client.session.get(wrong) as response:
            assert response.status == 404, wrong
            assert (await response.json())["error"]["code"] == "manifest_not_found"
    async with client.session.get(url.replace("246f28aa0001", "246f28aa0009")) as response:  # another node
        assert response.status == 404


async def test_manifest_urls(make_client) -> None:
    client: OtaClient = await make_client({"public_url": "https://hub.example.net:8443"})
    status, body = await client.call("GET", "/api/ota/manifest_url/24:6f:28:aa:00:09")
    assert_error(status, body, 404, "node_not_found")
    status, body = await client.call("GET", "/api/ota/manifest_url/greenhouse 2")
    assert status == 200 and body["kind"] == "group" and body["name"] == "greenhouse 2"
    assert body["url"].startswith("https://hub.example.net:8443/api/ota/manifest/greenhouse%202.json?key=")
    async with client.session.get(client.url + urlsplit(body["url"]).path + "?" + urlsplit(body["url"]).query) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "no_firmware"  # nothing released to it
    status, _ = await client.call("GET", "/api/ota/manifest_url/x", auth=False)
    assert status == 401


async def test_a_manifest_for_another_chip_names_its_family_and_uses_the_public_url(make_client) -> None:
    client: OtaClient = await make_client({"public_url": "http://192.168.1.10:8124"})
    _, row = await uploaded(client, "3.0.0", chip="esp32s3")
    node = client.hub.registry.get_or_register(NODE)
    client.hub.registry.update_node(node, firmware_version="3.0.0")
    url = await manifest_url(client, NODE)
    local = client.url + url.removeprefix("http://192.168.1.10:8124")
    async with client.session.get(local) as response:
        manifest = await response.json()
    assert manifest["builds"][0]["chipFamily"] == "ESP32-S3"
    assert manifest["builds"][0]["ota"]["path"].startswith("http://192.168.1.10:8124/api/ota/download/")


async def test_a_node_running_an_unknown_version_has_no_manifest(client: OtaClient) -> None:
    node = client.hub.registry.get_or_register(NODE)
    client.hub.registry.update_node(node, firmware_version="0.9.0")
    async with client.session.get(await manifest_url(client, NODE)) as response:
        assert response.status == 404 and (await response.json())["error"]["code"] == "no_firmware"


async def test_a_rollout_releases_a_node_without_commands_through_its_manifest(client: OtaClient) -> None:
    """An ESPHome device polling its manifest: no integration sends it commands; its turn changes its manifest."""
    await uploaded(client, "1.0.0", seed=1)
    image, new = await uploaded(client, "2.0.0", seed=2)
    node = client.hub.registry.get_or_register(NODE)  # no integration owns it: it cannot take commands
    client.hub.registry.update_node(node, firmware_version="1.0.0")
    url = await manifest_url(client, NODE)

    async def advertised() -> str:
        async with client.session.get(url) as response:
            assert response.status == 200
            return (await response.json())["version"]

    assert await advertised() == "1.0.0"  # what it runs
    status, rollout = await client.call(
        "POST", "/api/ota/rollouts", json={"firmware": "2.0.0", "target": {"nodes": [NODE]}, "node_timeout": 60}
    )
    assert status == 201, rollout

    async def offers_the_new_version() -> bool:
        return await advertised() == "2.0.0"

    await wait_until(offers_the_new_version, message="the manifest offers 2.0.0 once the node's turn came")
    status, body = await client.call("GET", f"/api/ota/rollouts/{rollout['id']}")
    assert body["nodes"][0]["status"] == "sending" and "update manifest" in body["nodes"][0]["detail"]
    async with client.session.get(url) as response:
        path = (await response.json())["builds"][0]["ota"]["path"]
    async with client.session.get(path) as response:
        assert await response.read() == image
    client.hub.registry.update_node(node, firmware_version="2.0.0")  # it installed it and reported back

    async def completed() -> bool:
        status, body = await client.call("GET", f"/api/ota/rollouts/{rollout['id']}")
        return body["status"] == "completed" and body["counts"]["succeeded"] == 1

    await wait_until(completed, message="the rollout completed")
    assert new["version"] == await advertised()


async def test_a_group_manifest_offers_what_a_completed_rollout_gave_the_group(client: OtaClient) -> None:
    image, _ = await uploaded(client, "2.0.0", seed=2)
    registry = client.hub.registry
    for node_id in (NODE, OTHER):  # ESPHome devices with the tag, polling the group's manifest
        registry.update_node(registry.get_or_register(node_id), firmware_version="1.0.0", tags=["greenhouse"])
    url = (await client.call("GET", "/api/ota/manifest_url/greenhouse"))[1]["url"]

    async def offered() -> tuple[int, dict]:
        async with client.session.get(url) as response:
            return response.status, await response.json()

    assert (await offered())[0] == 404  # nothing released to the group yet
    status, rollout = await client.call(
        "POST", "/api/ota/rollouts", json={"firmware": "2.0.0", "target": {"tags": ["greenhouse"]}, "rate": 100}
    )
    assert status == 201 and rollout["total"] == 2, rollout

    async def both_released() -> bool:
        _, body = await client.call("GET", f"/api/ota/rollouts/{rollout['id']}")
        return body["counts"]["sending"] == 2

    await wait_until(both_released, message="both nodes released through their manifests")
    assert (await offered())[0] == 404  # a group sees it only once the rollout went through
    for node_id in (NODE, OTHER):
        registry.update_node(registry.get(node_id), firmware_version="2.0.0")

    async def group_offers_it() -> bool:
        status, manifest = await offered()
        return status == 200 and manifest["version"] == "2.0.0"

    await wait_until(group_offers_it, message="the group's manifest offers 2.0.0")
    _, manifest = await offered()
    path = manifest["builds"][0]["ota"]["path"]
    async with client.session.get(path) as response:
        assert await response.read() == image

    async def spent() -> bool:  # a group's link: spent by the response that carried the last byte
        async with client.session.get(path) as response:
            return response.status == 410

    await wait_until(spent, message="the group's link spent")
