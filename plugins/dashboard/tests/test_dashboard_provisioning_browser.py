"""In a real browser: validate and compile a real ESPHome node (host platform), its log streamed, its binary offered.

Needs ESPHome (``HUB_ESPHOME`` from scripts/esphome-env, or ``esphome`` on PATH): the host node compiles offline
with the system's g++.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from dashboard_testing import TIMEOUT, require_playwright, sign_in
from test_dashboard_screens_browser import AXE, AXE_RUN

from hub.testing import services_required

require_playwright()

from playwright.async_api import expect

HOST_NODE = Path(__file__).parents[2] / "esphome" / "tests" / "data" / "host-node.yaml"
COMPILE = 600_000
"""Milliseconds a compile may take on a busy 2-core machine (about 15 s of CPU)."""


def _esphome() -> str:
    found = os.environ.get("HUB_ESPHOME") or shutil.which("esphome")
    if found and os.access(found, os.X_OK):
        return found
    if services_required():
        pytest.fail("no esphome executable (HUB_REQUIRE_SERVICES=1): run scripts/esphome-env, set HUB_ESPHOME")
    pytest.skip("no esphome executable: run scripts/esphome-env and set HUB_ESPHOME to what it prints")


async def _axe(page) -> list[str]:
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    return await page.evaluate(AXE_RUN)


async def test_validate_and_compile_a_node_and_get_its_binary(make_dashboard, new_page, tmp_path) -> None:
    firmware = tmp_path / "firmware"
    firmware.mkdir()
    shutil.copy(HOST_NODE, firmware / HOST_NODE.name)
    (firmware / "secrets.yaml").write_text("# none\n")
    dashboard = await make_dashboard(esphome={"firmware_dir": str(firmware), "executable": _esphome()})
    page = await new_page(dashboard, accept_downloads=True)
    page.expected_console.append("status of 400")  # the ota plugin refuses a host program: not an ESP32 image
    await sign_in(page, "/provisioning")

    row = page.locator('tr[data-name="host-node"]')
    await expect(row.locator(".col-hub")).to_contain_text("Never seen")
    await expect(row).to_contain_text("Test bench")
    assert await _axe(page) == []

    await row.get_by_role("button", name="Validate host-node").click()
    log = page.get_by_role("log", name="ESPHome output")
    await expect(log).to_contain_text("Configuration is valid!", timeout=TIMEOUT * 6)
    await expect(page.locator(".job-state")).to_have_text("Validated host-node just now.", timeout=TIMEOUT)
    await expect(row.locator(".col-validated")).to_contain_text("Valid")

    await row.get_by_role("button", name="Compile host-node").click()
    # ESPHome's lines arrive while it compiles, not at the end.
    await expect(log).to_contain_text("Compiling app... Build path:", timeout=TIMEOUT * 6)
    await expect(page.locator(".job-state")).to_have_text("Running…")
    await expect(row.locator(".col-actions")).to_contain_text("Compiling…")
    await expect(page.locator(".job-state")).to_have_text("Compiled host-node just now.", timeout=COMPILE)
    await expect(log).to_contain_text("Successfully compiled program")

    record = json.loads((firmware / ".esphome" / "build" / "host-node" / "hub-build.json").read_text())
    binary = page.locator(".binary")
    await expect(binary).to_contain_text("Binary version 1.2.3")
    await expect(binary).to_contain_text(f"SHA-256 {record['sha256']}")
    await expect(row.locator(".col-compiled")).to_contain_text("1.2.3")
    async with page.expect_download() as download_info:
        await binary.get_by_role("button", name="Download binary").click()
    download = await download_info.value
    saved = tmp_path / "downloaded"
    await download.save_as(saved)
    assert download.suggested_filename == "host-node-1.2.3"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == record["sha256"]

    # Handed to the ota plugin's upload API, which checks it like any upload: a host program is no ESP32 image.
    await binary.get_by_role("button", name="Add to firmware catalogue").click()
    await expect(page.get_by_role("alert")).to_contain_text("Not added to the catalogue: not an ESP32 image")
    assert await _axe(page) == []
