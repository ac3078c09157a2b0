"""Every page at desktop and phone size, in a real browser: screenshots, and the checks a person would make.

For each page the test waits until it shows its data, then fails on:

* horizontal overflow (the page is wider than the window: a phone user would scroll sideways);
* a chart legend left at "—" although the chart has data;
* any serious or critical accessibility violation found by axe-core (vendored under ``vendor/``, run
  in the page through DevTools, so the page's Content-Security-Policy stays as strict as in use);
* any console error or JavaScript error (the ``new_page`` fixture).

Screenshots go to ``test-artifacts/screenshots/<page>-<size>[-dark].png`` at the repository root
(git-ignored; CI keeps them as artifacts), or under ``$HUB_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from dashboard_testing import TIMEOUT, node_id, random_mac, require_playwright, sign_in

require_playwright()

from playwright.async_api import expect

from hub.testing import wait_until

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(
    os.environ.get("HUB_SCREENSHOTS") or Path(__file__).resolve().parents[3] / "test-artifacts/screenshots"
)
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SERIOUS = ("serious", "critical")

OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
BLANK_LEGENDS = """() => [...document.querySelectorAll('.chart, .rate-chart')]
  .filter(el => el.chart && el.chart.pointCount > 0)
  .flatMap(el => [...el.querySelectorAll('.u-legend .u-value')]
    .filter(cell => cell.textContent.trim() === '—')
    .map(() => (el.dataset.key || el.dataset.series)))"""
AXE_RUN = """() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
  .filter(v => ['serious', 'critical'].includes(v.impact))
  .map(v => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`))"""


async def _fleet_with_history(dashboard) -> str:
    """Two live simulated nodes, a rejected message, and a node with two hours of back-dated readings."""
    for _ in range(2):
        await dashboard.start_node(interval=1)
    await dashboard.publish("02:00:00:00:00:0F", "data", [b"{not json"])
    mac = random_mac()
    now = time.time()
    await dashboard.publish_readings(
        mac,
        [
            (now - 60 * (120 - i), {"temperature": 20 + (i % 10) / 2, "humidity": 50, "free_heap": 150000})
            for i in range(120)
        ],
    )
    await wait_until(lambda: dashboard.hub.registry.get(node_id(mac)), message="the node with history registered")
    return node_id(mac)


async def _check(page, name: str, suffix: str) -> list[str]:
    """Overflow, legends and axe on the page as it is now; the screenshot; the problems found."""
    problems = []
    overflow = await page.evaluate(OVERFLOW)
    if overflow > 0:
        problems.append(f"{name}: {overflow}px of horizontal overflow")
    blank = await page.evaluate(BLANK_LEGENDS)
    if blank:
        problems.append(f"{name}: legends at '—' with data: {blank}")
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    problems += [f"{name}: {violation}" for violation in await page.evaluate(AXE_RUN)]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{suffix}.png"), full_page=True)
    return problems


@pytest.mark.parametrize(("size", "scheme"), [("desktop", "light"), ("phone", "light"), ("desktop", "dark")])
async def test_every_page_fits_is_accessible_and_is_captured(private_dashboard, new_page, size, scheme) -> None:
    # private_dashboard first: set up before new_page, so it stops after the pages are closed.
    dashboard = private_dashboard
    node = await _fleet_with_history(dashboard)
    page = await new_page(dashboard, viewport=SIZES[size], color_scheme=scheme)
    suffix = size if scheme == "light" else f"{size}-{scheme}"
    problems = []

    await page.goto("/signin")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    problems += await _check(page, "signin", suffix)

    await sign_in(page)
    await expect(page.locator("table.fleet tbody tr")).to_have_count(3, timeout=TIMEOUT)
    await expect(page.locator(f'tr[data-node-id="{node}"] .reading').first).to_be_visible()
    problems += await _check(page, "fleet", suffix)

    await page.locator(f'tr[data-node-id="{node}"] .node-name').click()
    await expect(page.locator(".chart[data-key='temperature'] canvas")).to_have_count(1)
    for key in ("temperature", "humidity", "free_heap"):
        await page.wait_for_function(
            "key => { const el = document.querySelector(`.chart[data-key='${key}']`); "
            "return el && el.chart && el.chart.pointCount > 0 }",
            arg=key,
        )
    await expect(page.locator("table.status-history tbody tr").first).to_be_visible()
    await expect(page.locator(".command-buttons button").first).to_be_visible()
    problems += await _check(page, "node", suffix)

    await page.get_by_role("link", name="Firmware").click()
    await expect(page.get_by_text("No firmware uploaded yet.")).to_be_visible()
    await expect(page.get_by_text("No rollouts yet.")).to_be_visible()
    problems += await _check(page, "firmware", suffix)

    await page.get_by_role("link", name="Provisioning").click()
    await expect(page.get_by_text("No node files in")).to_be_visible()
    problems += await _check(page, "provisioning", suffix)

    await page.get_by_role("link", name="System").click()
    await expect(page.locator(".rate-chart canvas")).to_have_count(4)
    await expect(page.locator("tr[data-reason='not_json'] .reject-example")).to_contain_text("Last:")
    problems += await _check(page, "system", suffix)

    await page.get_by_role("link", name="Tokens").click()
    await expect(page.locator("table.tokens[data-kind='refresh'] tbody tr")).to_have_count(1)
    problems += await _check(page, "tokens", suffix)

    assert not problems, "\n".join(problems)
