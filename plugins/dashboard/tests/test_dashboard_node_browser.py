"""In a real browser: a node's page charts its stored history, extends it live, and edits the node."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from dashboard_testing import TIMEOUT, node_id, random_mac, require_playwright, sign_in

require_playwright()

from playwright.async_api import expect

from hub.testing import wait_until

CHART = ".chart[data-key='temperature']"


async def _node_with_history(dashboard, minutes: int = 60) -> str:
    """A node with a reading every minute for the last ``minutes`` (back-dated through the JSON contract)."""
    mac = random_mac()
    now = time.time()
    readings = [(now - 60 * (minutes - i), {"temperature": 20 + (i % 10) / 2, "humidity": 50}) for i in range(minutes)]
    await dashboard.publish_readings(mac, readings)
    await wait_until(
        lambda: (n := dashboard.hub.registry.get(node_id(mac))) and n.entities["temperature"].last_reported,
        message="the readings to arrive",
    )
    return mac


async def test_chart_shows_stored_history_and_extends_live(page, dashboard) -> None:
    mac = await _node_with_history(dashboard)
    await sign_in(page, f"/nodes/{node_id(mac)}")
    await page.get_by_role("button", name="1 h").click()
    await expect(page.locator(f"{CHART} canvas")).to_have_count(1)
    points = await page.locator(CHART).evaluate(
        "el => new Promise(r => { const f = () => el.chart && el.chart.pointCount >= 55 ? r(el.chart.pointCount) : setTimeout(f, 50); f(); })"
    )
    assert 55 <= points <= 60
    series = await page.locator(CHART).evaluate("el => el.chart.plot.data.map(s => s.filter(v => v !== null).length)")
    assert series == [points] * 4  # time, min, avg, max
    await expect(page.locator(".tile[data-key='temperature'] .tile-value")).to_have_text("24.5 °C")

    # A reading now: the value, the tile and the chart move without a reload.
    await dashboard.publish_readings(mac, [(time.time(), {"temperature": 31.25, "humidity": 50})])
    await expect(page.locator(".tile[data-key='temperature'] .tile-value")).to_have_text("31.25 °C", timeout=TIMEOUT)
    last_max = await page.locator(CHART).evaluate("el => el.chart.plot.data[3].filter(v => v !== null).at(-1)")
    assert last_max == 31.25
    await expect(page.locator("table.status-history tbody tr").first).to_contain_text("Online")


async def test_range_picker_asks_for_each_range(page, dashboard) -> None:
    mac = await _node_with_history(dashboard, minutes=5)
    await sign_in(page, f"/nodes/{node_id(mac)}")
    await expect(page.locator(f"{CHART} canvas")).to_have_count(1)
    for label, seconds, points in (("30 d", 30 * 86400, 360), ("7 d", 7 * 86400, 336), ("24 h", 86400, 288)):
        # The range asked for (a young node's data is then also asked for over its own age, with fewer points).
        wanted = f"points={points}"
        async with page.expect_request(
            lambda r, w=wanted: "/history/temperature?" in r.url and w in r.url
        ) as request_info:
            await page.get_by_role("button", name=label).click()
        query = parse_qs(urlsplit((await request_info.value).url).query)
        assert float(query["end"][0]) - float(query["start"][0]) == seconds
        assert query["points"] == [str(points)]
        await expect(page.get_by_role("button", name=label)).to_have_attribute("aria-pressed", "true")
    await page.wait_for_function(
        "el => el.chart && el.chart.pointCount > 0", arg=await page.locator(CHART).element_handle()
    )
    await page.reload()  # the choice is remembered
    await expect(page.get_by_role("button", name="24 h")).to_have_attribute("aria-pressed", "true")


async def test_rename_and_describe_a_node(page, dashboard) -> None:
    page.expected_console.append("status of 400")  # a blank name is refused, on purpose
    mac = await _node_with_history(dashboard, minutes=2)
    await sign_in(page, f"/nodes/{node_id(mac)}")
    await page.get_by_role("button", name="Edit").click()
    await page.get_by_label("Name").fill("greenhouse north")
    await page.get_by_label("Description").fill("by the tomatoes\nsecond shelf")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("h1")).to_have_text("greenhouse north")
    await expect(page.locator(".description")).to_have_text("by the tomatoes\nsecond shelf")
    node = dashboard.hub.registry.get(node_id(mac))
    assert (node.name, node.description) == ("greenhouse north", "by the tomatoes\nsecond shelf")

    await page.get_by_role("button", name="Edit").click()
    await page.get_by_label("Name").fill("   ")
    await page.get_by_role("button", name="Save").click()  # refused by the API, said on the page
    await expect(page.get_by_role("alert")).to_contain_text("name")
    await page.get_by_role("button", name="Cancel").click()
    await page.get_by_role("link", name="← Fleet").click()
    await expect(page.locator(f'tr[data-node-id="{node_id(mac)}"] .node-name')).to_have_text("greenhouse north")


async def test_a_young_node_is_charted_over_its_own_age_with_the_latest_values_in_the_legend(page, dashboard) -> None:
    mac = await _node_with_history(dashboard, minutes=10)
    await sign_in(page, f"/nodes/{node_id(mac)}")
    await expect(page.get_by_role("button", name="24 h")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator(".notice").filter(has_text="Showing all")).to_contain_text("of data (younger than 24 h)")
    await page.wait_for_function(
        "el => el.chart && el.chart.pointCount >= 9", arg=await page.locator(CHART).element_handle()
    )
    span = await page.locator(CHART).evaluate("el => el.chart.end - el.chart.start")
    assert 600 <= span <= 1500  # about the node's age (its first bucket was 5 min wide), not a day
    # Not hovering: the legend shows the newest bucket, never "—".
    legend = page.locator(f"{CHART} .u-legend .u-value")
    await expect(legend.nth(2)).to_have_text("24.5 °C")  # avg of the last reading (minute 9: 20 + 9/2)
    assert "—" not in await legend.all_inner_texts()
    await expect(page.locator(".chart-card h3").filter(has_text="Free heap")).to_have_count(0)  # no such reading here


async def test_status_timeline_shows_an_outage_live(page, dashboard) -> None:
    node = await dashboard.start_node(interval=1)
    await sign_in(page, f"/nodes/{node_id(node.mac)}")
    strip = page.locator(".timeline-strip")
    await expect(strip.locator(".timeline-span.status-online")).to_have_count(1)
    await expect(page.locator(".timeline-summary")).to_contain_text("went offline 0 times")

    node.power_loss()  # the Last Will: offline, drawn without a reload
    await expect(strip.locator(".timeline-span.status-offline")).to_have_count(1, timeout=TIMEOUT)
    await expect(page.locator(".timeline-summary")).to_contain_text("went offline once")
    assert "Online" in await strip.get_attribute("aria-label")
