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
    # In words, with the code for searching logs and what the last one was.
    await expect(rejects.locator("tr[data-reason='not_json'] .reason")).to_have_text("Not valid JSON")
    await expect(rejects.locator("tr[data-reason='not_json'] .reject-example")).to_contain_text(f"devices/{mac}/data")
    await expect(page.locator("[data-card='nodes'] dt").first).to_have_text(re.compile(r"^[A-Z]"))  # "Online"
    await expect(page.locator("[data-card='broker'] .badge")).to_have_text("Connected")
    await expect(page.locator("[data-card='storage'] [data-figure='latency'] .big-value")).to_have_text(
        re.compile(r"^\d[\d.,]* ms$")
    )
    received = page.locator("[data-card='messages'] .facts div", has_text="Received").locator("dd")
    await expect(received).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    for plugin in ("storage", "mqtt", "presence", "http", "esp32_node", "dashboard"):
        await expect(page.locator(f"tr[data-plugin='{plugin}']")).to_be_visible()
    await expect(page.locator("[data-card='nodes'] .big-value")).not_to_have_text("0")


async def test_rate_charts_cover_the_last_hour_and_extend(page, dashboard) -> None:
    await dashboard.start_node(interval=0.2)
    await sign_in(page, "/system")
    await expect(page.locator(".rate-chart canvas")).to_have_count(4)
    received = await page.locator(".rate-chart[data-series='received_per_second']").element_handle()
    # The hub samples every 5 s and a point needs two samples; the page asks again every 5 s.
    await page.wait_for_function("el => el.chart && el.chart.pointCount > 0", arg=received, timeout=20_000)
    before = await received.evaluate("el => el.chart.pointCount")
    await page.wait_for_function("([el, n]) => el.chart.pointCount > n", arg=[received, before], timeout=20_000)
    # The legend shows the newest rate when not hovering, never "—".
    values = await received.eval_on_selector_all(".u-legend .u-value", "cells => cells.map(c => c.textContent)")
    assert values and "—" not in values


async def test_an_admin_sees_and_lifts_a_sign_in_ban(page, dashboard) -> None:
    from hub.plugins.http import DATA_SERVER

    guard = dashboard.hub.data[DATA_SERVER].guard
    for _ in range(dashboard.hub.config["http"]["login_attempts_threshold"]):  # someone guessing passwords
        guard.failed("2001:db8::66", "password")
    assert guard.banned_for("2001:db8::66") > 0
    await sign_in(page, "/system")
    bans = page.locator("[data-card='sign-in-bans']")
    row = bans.locator("tr[data-address='2001:db8::66']")
    await expect(row).to_be_visible()
    await row.get_by_role("button", name="Lift ban").click()
    await expect(row).to_have_count(0)
    await expect(bans).to_contain_text("No address is banned.")
    assert guard.banned_for("2001:db8::66") == 0
