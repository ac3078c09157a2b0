"""In a real browser: upload firmware, start a rollout and watch it progress live to the end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dashboard_testing import TIMEOUT, require_playwright, sign_in

require_playwright()

from playwright.async_api import expect

# The ota plugin's test helper builds real ESP32 application images (loaded by path: another plugin's tests).
_spec = importlib.util.spec_from_file_location("ota_images", Path(__file__).parents[2] / "ota/tests/ota_images.py")
ota_images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ota_images)

ROLLOUT = 30_000
"""Milliseconds for a rollout of three simulated nodes (download, reboot, report the new version)."""


async def test_upload_firmware_and_watch_a_rollout_complete(private_dashboard, new_page, tmp_path) -> None:
    dashboard = private_dashboard  # its own broker: the rollout reaches this test's nodes only
    nodes = [await dashboard.start_node(interval=1) for _ in range(3)]
    page = await new_page(dashboard)
    page.expected_console.append("status of 400")  # the broken image is refused, on purpose
    await sign_in(page, "/firmware")
    await expect(page.get_by_text("No firmware uploaded yet.")).to_be_visible()

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x7fELF not firmware" * 64)
    await page.get_by_label("Image (.bin)").set_input_files(str(junk))
    await page.get_by_role("button", name="Upload").click()
    await expect(page.get_by_role("alert").first).to_contain_text("not an ESP32 image")

    image = tmp_path / "greenhouse-2.0.0.bin"
    image.write_bytes(ota_images.build_image("2.0.0"))
    await page.get_by_label("Image (.bin)").set_input_files(str(image))
    await page.get_by_role("button", name="Upload").click()
    await expect(page.locator(".callout.success")).to_contain_text("Version 2.0.0 (esp32")
    await expect(page.locator("table.firmware tr[data-version='2.0.0']")).to_be_visible()

    await page.get_by_label("Firmware", exact=True).select_option("2.0.0")
    await page.get_by_label("Stages").select_option("all")
    await page.get_by_role("button", name="Start rollout").click()
    card = page.locator("article.rollout").first
    await expect(card.locator("h3")).to_have_text("Version 2.0.0")
    # Live, without a reload: the counts move, the rollout completes.
    await expect(card.locator(".rollout-counts")).to_have_text("3 of 3 updated", timeout=ROLLOUT)
    await expect(card.locator(".rollout-status")).to_have_text("Completed", timeout=TIMEOUT)
    assert {node.firmware_version for node in nodes} == {"2.0.0"}
    assert await card.get_by_role("button", name="Pause").count() == 0
