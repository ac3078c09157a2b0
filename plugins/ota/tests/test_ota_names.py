"""Manifests by a node's stable name (``/api/ota/manifest/<kind>/<name>.json``): what an ESPHome node polls from
its first build on, before the hub knows its MAC. Here the names are set as the ``esphome`` plugin sets them (the
node attribute ``esphome_name``), without that plugin: the attribute is the whole contract.

Each test runs on SQLite and on PostgreSQL, over real HTTP.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from ota_images import build_image
from ota_testing import OtaClient, assert_error

from hub import ServiceValidationError
from hub.testing import wait_until

PLACEHOLDER = "esphome:kitchen"
MAC = "24:6f:28:aa:00:01"


async def name_url(client: OtaClient, name: str, kind: str = "esphome") -> dict:
    status, body = await client.call("GET", f"/api/ota/manifest_url/{kind}/{name}")
    assert status == 200, body
    return body


async def offered(client: OtaClient, url: str) -> tuple[int, dict]:
    async with client.session.get(url) as response:
        return response.status, await response.json()


async def test_a_node_gets_its_manifest_by_name_as_a_placeholder_and_later_under_its_mac(client: OtaClient) -> None:
    registry = client.hub.registry
    for version, seed in (("1.0.0", 1), ("2.0.0", 2)):
        assert (await client.upload(build_image(version, seed=seed, project="kitchen")))[0] == 201
    placeholder = registry.get_or_register(PLACEHOLDER)  # defined in a YAML, never heard from
    registry.update_node(placeholder, attributes={"esphome_name": "kitchen"})
    body = await name_url(client, "kitchen")
    assert body["node_id"] == PLACEHOLDER and body["kind"] == "esphome"
    url = body["url"]
    assert urlsplit(url).path == "/api/ota/manifest/esphome/kitchen.json"
    assert (await offered(client, url))[0] == 404  # nothing released to it yet
    status, rollout = await client.call(
        "POST", "/api/ota/rollouts", json={"firmware": "2.0.0", "target": {"nodes": [PLACEHOLDER]}, "node_timeout": 60}
    )
    assert status == 201, rollout

    async def offers_2() -> bool:
        status, manifest = await offered(client, url)
        return status == 200 and manifest["version"] == "2.0.0"

    await wait_until(offers_2, message="the placeholder's manifest offers the release, by name")

    # It connects: the same name under its MAC, running 1.0.0. The same URL (built into its firmware) now
    # answers for the MAC node, the one seen last, while the placeholder is still there.
    node = registry.get_or_register(MAC)
    registry.update_node(node, attributes={"esphome_name": "kitchen"}, firmware_version="1.0.0")
    registry.report_availability(node, True)
    assert (await name_url(client, "kitchen"))["url"] == url  # the URL never changes
    status, manifest = await offered(client, url)
    assert status == 200 and manifest["version"] == "1.0.0"
    registry.remove(PLACEHOLDER)  # the esphome plugin folds it into the MAC node
    status, manifest = await offered(client, url)
    assert status == 200 and manifest["version"] == "1.0.0"
    assert (await name_url(client, "kitchen"))["node_id"] == MAC


async def test_a_name_manifest_needs_its_own_key_and_an_unknown_name_looks_the_same(client: OtaClient) -> None:
    registry = client.hub.registry
    assert (await client.upload(build_image("1.0.0")))[0] == 201
    for node_id, name in ((MAC, "kitchen"), ("24:6f:28:aa:00:02", "porch")):
        node = registry.get_or_register(node_id)
        registry.update_node(node, attributes={"esphome_name": name}, firmware_version="1.0.0")
    url = (await name_url(client, "kitchen"))["url"]
    assert (await offered(client, url))[0] == 200
    base = url.split("?")[0]
    porch_key = (await name_url(client, "porch"))["url"].split("key=")[1]
    node_key = (await client.call("GET", f"/api/ota/manifest_url/{MAC}"))[1]["url"].split("key=")[1]
    nobody = await name_url(client, "nobody")  # the hub computes a key for any name
    assert nobody["node_id"] is None
    wrong = [
        base,
        f"{base}?key=",
        f"{base}?key={porch_key}",
        f"{base}?key={node_key}",  # the MAC's own key opens only /api/ota/manifest/<mac>.json
        f"{base}?key={'0' * 64}",
        nobody["url"],  # the right key of a name no node carries
        url.replace("/esphome/", "/other/"),
        url.replace("/esphome/", "/node/"),
    ]
    answers = set()
    for candidate in wrong:
        status, body = await offered(client, client.url + urlsplit(candidate).path + "?" + urlsplit(candidate).query)
        assert status == 404, candidate
        answers.add(str(body))
    assert answers == {str({"error": {"code": "manifest_not_found", "message": "no such manifest"}})}


async def test_name_manifest_urls_and_the_service_other_plugins_call(make_client) -> None:
    client: OtaClient = await make_client({"public_url": "https://hub.example.net:8443"})
    body = await name_url(client, "kitchen-climate")
    assert body["url"].startswith("https://hub.example.net:8443/api/ota/manifest/esphome/kitchen-climate.json?key=")
    status, body = await client.call("GET", "/api/ota/manifest_url/node/kitchen")
    assert_error(status, body, 404, "manifest_not_found")
    status, _ = await client.call("GET", "/api/ota/manifest_url/esphome/kitchen", auth=False)
    assert status == 401
    services = client.hub.services
    answer = await services.call("ota", "manifest_url", {"kind": "esphome", "name": "kitchen-climate"})
    assert answer == {"url": (await name_url(client, "kitchen-climate"))["url"], "node_id": None}
    answer = await services.call(
        "ota", "manifest_url", {"kind": "esphome", "name": "kitchen-climate", "base_url": "http://10.0.0.2:8124/"}
    )
    assert answer["url"].startswith("http://10.0.0.2:8124/api/ota/manifest/esphome/kitchen-climate.json?key=")
    for bad in (
        {"kind": "node", "name": "x"},
        {"kind": "esphome", "name": "a/b"},
        {"kind": "esphome", "name": "x", "base_url": "ftp://x"},
    ):
        with pytest.raises(ServiceValidationError):
            await services.call("ota", "manifest_url", bad)


async def test_without_a_public_url_the_service_cannot_tell_a_node_where_the_hub_is(client: OtaClient) -> None:
    answer = await client.hub.services.call("ota", "manifest_url", {"kind": "esphome", "name": "kitchen"})
    assert answer == {"url": None, "node_id": None}
