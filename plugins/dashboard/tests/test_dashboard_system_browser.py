"""In a real browser: the system page shows the hub's figures, including messages it rejected and why."""

from __future__ import annotations

import re

from dashboard_testing import random_mac, require_playwright, sign_in

require_playwright()

from playwright.async_api import expect

from hub.testing import wait_until


async def test_system_page_shows_rates_rejects_storage_broker_and_plugins(page, dashboard) -> None:
    await dashboard.start_node(interval=0.2)
    mac = random_mac()
    await dashboard.publish(mac, "data", [b"{not json", b"[1, 2]"])
    metrics = dashboard.hub.metrics
    await wait_until(
        lambda: (
            metrics.value("messages_rejected", reason="not_json")
            and metrics.value("messages_rejected", reason="not_object")
        ),
        message="the rejections to be counted",
    )
    await sign_in(page, "/system")
    rejects = page.locator("[data-card='rejected-by-reason']")
    await expect(rejects.locator("tr", has_text="not_json")).to_contain_text("1")
    await expect(rejects.locator("tr", has_text="not_object")).to_contain_text("1")
    await expect(page.locator("[data-card='broker'] .badge")).to_have_text("Connected")
    await expect(page.locator("[data-card='storage'] [data-figure='latency'] .big-value")).to_have_text(
        re.compile(r"^\d[\d.,]* ms$")
    )
    received = page.locator("[data-card='messages'] .facts div", has_text="Received").locator("dd")
    await expect(received).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    for plugin in ("storage", "mqtt", "presence", "http", "esp32_node", "dashboard"):
        await expect(page.locator(f"tr[data-plugin='{plugin}']")).to_be_visible()
    await expect(page.locator("[data-card='nodes'] .big-value")).not_to_have_text("0")
