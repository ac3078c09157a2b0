"""In a real browser: every device- or user-supplied string is shown as text, never run as markup or script.

Each string a node, a discovery config, an operator or an uploaded file can set
(node and friendly names, description, area, tag, attributes, entity names,
units and states, firmware version and file name, command params, token name,
ESPHome node names, the topic of a rejected message) is set to markup that
would run script if it were ever parsed: ``<img onerror>``, ``</script>``,
``javascript:`` URLs, ``<svg onload>``, template syntax.  Every page that shows
them is opened; no script may run (``window.__xss`` stays unset, no dialog, no
Content-Security-Policy violation: the ``new_page`` fixture fails the test on
either), no element from the strings may appear, and the strings must be on the
page literally.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import orjson
from dashboard_testing import (
    OWNER_PASSWORD,
    TIMEOUT,
    _publish_blocking,
    node_id,
    random_mac,
    require_playwright,
    sign_in,
)

require_playwright()

import asyncio

from playwright.async_api import expect

from hub.testing import wait_until

_spec = importlib.util.spec_from_file_location("ota_images", Path(__file__).parents[2] / "ota/tests/ota_images.py")
ota_images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ota_images)

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "</script><script>window.__xss=2</script>"
JS_URL = "javascript:window.__xss=3"
SVG = '"><svg onload=window.__xss=4>'
TEMPLATE = "${window.__xss=5}{{constructor.constructor('window.__xss=5')()}}"
PAYLOADS = (IMG, SCRIPT, JS_URL, SVG, TEMPLATE)

INJECTED = "[onerror], [onload], img[src='x'], a[href^='javascript:'], main script, iframe, object, embed, svg[onload]"
"""Elements or attributes that could only come from one of the strings being parsed as markup."""


async def _clean(page) -> None:
    """No script ran, no element from the strings exists."""
    assert await page.evaluate("typeof window.__xss") == "undefined", await page.evaluate("window.__xss")
    assert await page.locator(INJECTED).count() == 0, await page.locator(INJECTED).evaluate_all(
        "els => els.map(e => e.outerHTML)"
    )
    assert page.dialogs == []


async def test_hostile_strings_everywhere_are_shown_literally_and_never_run(new_page, dashboard, tmp_path) -> None:
    hub = dashboard.hub
    token = dashboard.owner.token
    assert {"ota", "esphome"} <= set(hub.plugins.info), hub.plugins.info

    # A JSON-contract node: its firmware version and string attributes come from the device.
    mac = random_mac()
    telemetry = {"temperature": 21.5, "firmware_version": SVG, "note": IMG, "label": SCRIPT, "link": JS_URL}
    await dashboard.publish(mac, "data", [orjson.dumps(telemetry)])
    await wait_until(lambda: hub.registry.get(node_id(mac)), message="the node to register")

    # An ESPHome node over MQTT discovery: device name, entity names, units and a text state from the device.
    esp = f"xss{random.getrandbits(32):08x}"
    esp_mac = "02" + "".join(f"{random.randrange(256):02x}" for _ in range(5))
    device = {"ids": esp_mac, "cns": [["mac", esp_mac]], "name": TEMPLATE, "sa": SVG}
    sensor = {"name": IMG, "unit_of_meas": SCRIPT, "stat_t": f"{esp}/sensor/t/state", "dev": device}
    text = {"name": JS_URL, "stat_t": f"{esp}/text_sensor/s/state", "dev": device}
    broker = dashboard.hub_mqtt_url
    await asyncio.to_thread(
        _publish_blocking, broker, f"homeassistant/sensor/{esp}/t/config", [orjson.dumps(sensor)], False
    )
    await asyncio.to_thread(
        _publish_blocking, broker, f"homeassistant/text_sensor/{esp}/s/config", [orjson.dumps(text)], False
    )
    esp_id = ":".join(esp_mac[i : i + 2] for i in range(0, 12, 2))
    await wait_until(lambda: (n := hub.registry.get(esp_id)) and len(n.entities) == 2, message="the ESPHome entities")
    await asyncio.to_thread(_publish_blocking, broker, f"{esp}/sensor/t/state", [b"7.5"], False)
    await asyncio.to_thread(_publish_blocking, broker, f"{esp}/text_sensor/s/state", [IMG.encode()], False)
    await wait_until(lambda: hub.registry.get(esp_id).entities["text_sensor.s"].state == IMG, message="the text state")

    # A rejected message whose topic is markup: the system page shows the last example of each reason.
    await asyncio.to_thread(
        _publish_blocking, broker, "devices/<img src=x onerror=window.__xss=6>/data", [b"{}"], False
    )

    # What an operator sets through the API.
    status, body = await dashboard.call(
        "PATCH",
        f"/api/nodes/{node_id(mac)}",
        token=token,
        json={"name": IMG, "description": SCRIPT, "area": SVG, "tags": [JS_URL]},
    )
    assert status == 200, body
    status, body = await dashboard.call(
        "POST", "/api/auth/tokens", token=token, json={"name": IMG, "password": OWNER_PASSWORD}
    )
    assert status == 201, body
    params = {"url": JS_URL, "version": SCRIPT}
    status, body = await dashboard.call(
        "POST", f"/api/nodes/{node_id(mac)}/commands", token=token, json={"action": "FIRMWARE_UPDATE", "params": params}
    )
    assert status in (200, 201, 202), body

    # A firmware file whose name is markup (no slash: a slash is refused as a path), and a rollout's name.
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", ota_images.build_image("6.6.6"), filename=IMG, content_type="application/octet-stream")
    status, body = await dashboard.call("POST", "/api/ota/firmware", token=token, data=form)
    assert status == 201, body
    assert body["name"] == IMG  # kept as a label only (the page shows versions); a rollout's name is shown
    rollout = {"firmware": "6.6.6", "target": {"nodes": [node_id(mac)]}, "name": SVG}
    status, body = await dashboard.call("POST", "/api/ota/rollouts", token=token, json=rollout)
    assert status == 201, body

    # An ESPHome node file whose friendly name is markup.
    firmware_dir = Path(hub.config["esphome"]["firmware_dir"])
    (firmware_dir / "xss-node.yaml").write_text(
        f"esphome:\n  name: xss-node\n  friendly_name: {orjson.dumps(TEMPLATE).decode()}\nesp32:\n  board: esp32dev\n"
    )

    page = await new_page(dashboard)
    await sign_in(page)
    row = page.locator(f'tr[data-node-id="{node_id(mac)}"]')
    await expect(row.locator(".node-name")).to_have_text(IMG, timeout=TIMEOUT)
    await expect(row).to_contain_text(SVG)  # the area
    await _clean(page)

    await page.goto(f"/nodes/{node_id(mac)}")
    await expect(page.locator("h1")).to_have_text(IMG, timeout=TIMEOUT)
    await expect(page.locator(".description")).to_have_text(SCRIPT)
    for shown in (SVG, JS_URL, IMG, SCRIPT):  # area, tag, attributes, firmware version, command params
        await expect(page.get_by_text(shown, exact=False).first).to_be_visible()
    await expect(page.locator("main")).to_contain_text(JS_URL)
    await _clean(page)

    await page.goto(f"/nodes/{esp_id}")
    await expect(page.locator("h1")).to_have_text(TEMPLATE, timeout=TIMEOUT)
    await expect(page.locator("main")).to_contain_text(IMG)  # entity name and the text state
    await expect(page.locator("main")).to_contain_text(SCRIPT)  # the unit
    await expect(page.locator("main")).to_contain_text(JS_URL)
    await _clean(page)

    await page.goto("/firmware")
    await expect(page.locator("article.rollout h3").first).to_have_text(SVG, timeout=TIMEOUT)
    await _clean(page)

    await page.goto("/provisioning")
    await expect(page.locator("main")).to_contain_text(TEMPLATE, timeout=TIMEOUT)
    await _clean(page)

    await page.goto("/system")
    await expect(page.locator("main")).to_contain_text("<img src=x onerror=window.__xss=6>", timeout=TIMEOUT)
    await _clean(page)

    await page.goto("/tokens")
    await expect(page.locator("main")).to_contain_text(IMG, timeout=TIMEOUT)
    await _clean(page)


async def test_a_javascript_url_as_the_sign_in_target_goes_nowhere(new_page, dashboard) -> None:
    page = await new_page(dashboard)
    await page.goto("/signin?next=" + JS_URL.replace(":", "%3A"))
    await page.get_by_label("Username").fill("owner")
    await page.get_by_label("Password").fill(OWNER_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_function("() => location.pathname === '/'", timeout=TIMEOUT)
    await _clean(page)
