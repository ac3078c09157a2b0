"""Fixtures for the dashboard's tests: a real hub serving the dashboard, and a real Chromium driving it.

* ``chromium`` — one headless Debian Chromium per test module (``/usr/bin/chromium``, or
  ``HUB_TEST_CHROMIUM``), reached over the DevTools protocol; missing: skip, or fail under
  ``HUB_REQUIRE_SERVICES=1``.  Each test gets its own browser context (no shared storage).
* ``dashboard`` — a hub with the built-ins storage (SQLite), mqtt (the real Mosquitto),
  presence (short timeouts) and http (a free port), plus the esp32_node plugin and this one,
  with an owner account.

Playwright's browser objects belong to one event loop, and pytest-asyncio gives each test its
own loop (the hub's fixtures are function-scoped), so the module-scoped part is the Chromium
process; each test connects a fresh Playwright to it, which takes a fraction of a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub import DATA_HTTP_URL
from hub.testing import create_user_and_token, unavailable

CHROMIUM_ENV = "HUB_TEST_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
BUILTINS = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence", "hub.plugins.http")


@pytest.fixture(scope="module")
def chromium() -> Iterator[str]:
    """The DevTools WebSocket URL of a headless Chromium started for this test module."""
    executable = os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        unavailable(f"Chromium not found at {executable} (apt-get install chromium, or set {CHROMIUM_ENV})")
    profile = Path(tempfile.mkdtemp(prefix="hub-dashboard-chromium-"))
    process = subprocess.Popen(
        [executable, *CHROMIUM_ARGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield _devtools_url(profile, process)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_url(profile: Path, process: subprocess.Popen[bytes]) -> str:
    """Chromium writes its DevTools port and path to ``DevToolsActivePort`` in the profile once it listens."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Chromium exited at start with code {process.returncode}")
        lines = active.read_text().split() if active.exists() else []
        if len(lines) == 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    pytest.fail("Chromium did not open its DevTools port within 20 s")


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    """A Playwright connection to this module's Chromium."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        connected = await playwright.chromium.connect_over_cdp(chromium)
        yield connected


async def _make_dashboard(hub_factory: Any, hub_mqtt_url: str, *, owner: bool = True, **extra: Any) -> Any:
    from dashboard_testing import OWNER, OWNER_PASSWORD, Dashboard

    config = {
        "mqtt": {
            "broker": hub_mqtt_url,
            "client_id": f"hub-dashboard-test-{uuid.uuid4().hex[:12]}",
            "session_expiry": 0,
        },
        "presence": {"timeout": 2, "initial_timeout": 4, "check_interval": 0.2},
        "http": {"port": 0},
        # No ESPHome node files (the repository's examples would be defined nodes in every fleet).
        "esphome": {"firmware_dir": tempfile.mkdtemp(prefix="hub-dashboard-no-esphome-")},
        **extra,
    }
    # Both plugins load the way `hub run` loads them: as installed distributions (entry points).
    hub = await hub_factory(config, builtins=BUILTINS, entry_points=True, start=False)
    # As `hub user create` would, before start, so no onboarding link is made.
    user = await create_user_and_token(hub, OWNER, OWNER_PASSWORD) if owner else None
    await hub.async_start()
    assert not hub.plugins.failed, hub.plugins.failed
    assert {"esp32_node", "dashboard"} <= set(hub.plugins.info), "install plugins/esp32_node and plugins/dashboard"
    return Dashboard(hub, hub.data[DATA_HTTP_URL], hub_mqtt_url, aiohttp.ClientSession(), user)


@pytest.fixture
async def make_dashboard(hub_factory: Any, hub_mqtt_url: str) -> AsyncIterator[Any]:
    """Factory: ``await make_dashboard(owner=True, **config_sections)`` → a running :class:`Dashboard`."""
    made: list[Any] = []

    async def factory(**kwargs: Any) -> Any:
        dashboard = await _make_dashboard(hub_factory, hub_mqtt_url, **kwargs)
        made.append(dashboard)
        return dashboard

    yield factory
    for dashboard in made:
        await dashboard.close()
        await dashboard.session.close()


@pytest.fixture
async def private_dashboard(hub_factory: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """A dashboard hub on its own Mosquitto: no other test's nodes in its fleet (stable screenshots)."""
    from hub.testing.mosquitto import PrivateMosquitto

    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        dashboard = await _make_dashboard(hub_factory, broker.url)
        try:
            yield dashboard
        finally:
            await dashboard.close()
            await dashboard.session.close()
            await dashboard.hub.async_stop()


@pytest.fixture
async def dashboard(make_dashboard: Any) -> Any:
    """A running hub with the dashboard and an owner account."""
    return await make_dashboard()


@pytest.fixture
async def new_page(browser: Any, make_dashboard: Any) -> AsyncIterator[Any]:
    """Factory: ``await new_page(dashboard)`` → a page in a fresh browser context with the hub as base URL.

    Every page records JavaScript errors, dialogs (``page.dialogs``; an ``alert`` from injected
    markup would land there), console errors and Content-Security-Policy violations; a test fails
    if the app threw, logged an error (a failed request included) or broke its own policy.  A test
    that provokes an error on purpose lists a substring of it in ``page.expected_console``.

    It depends on ``make_dashboard`` so its pages close before the hubs stop: a page left open on a
    stopped hub logs refused reconnects, which are no fault of the test.
    """
    contexts: list[Any] = []
    pages: list[Any] = []

    async def factory(dashboard: Any, **options: Any) -> Any:
        context = await browser.new_context(base_url=dashboard.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = await context.new_page()
        page.dialogs, page.errors = [], []

        async def on_dialog(dialog: Any) -> None:
            page.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.expected_console = []  # substrings of console errors a test provokes on purpose (e.g. a 401)

        def on_console(msg: Any) -> None:
            if msg.type == "error" or "Content Security Policy" in msg.text:
                if not any(expected in msg.text for expected in page.expected_console):
                    page.errors.append(f"console {msg.type}: {msg.text}")

        page.on("console", on_console)
        pages.append(page)
        return page

    yield factory
    errors = [error for page in pages for error in page.errors]
    for context in contexts:
        await context.close()
    assert not errors, f"errors in the browser: {errors}"


@pytest.fixture
async def page(new_page: Any, dashboard: Any) -> Any:
    """A fresh browser page on the ``dashboard`` hub (not signed in)."""
    return await new_page(dashboard)
