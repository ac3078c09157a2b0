"""In a real browser: every signed-in page shows a banner while the hub is degraded (its database down).

The hub stores on a private PostgreSQL cluster the test stops and starts (never the shared server).  The
banner follows the hub's health over the live WebSocket (``get_health``, then ``health_changed`` events),
so it appears and goes without a reload.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from dashboard_testing import require_playwright, sign_in

require_playwright()

from playwright.async_api import expect

from hub.testing.private_postgres import PrivatePostgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().start()
    yield server
    server.close()


async def test_banner_while_the_database_is_down(private_postgres, make_dashboard, new_page) -> None:
    dashboard = await make_dashboard(storage={"db_url": private_postgres.url, "shutdown_timeout": 1})
    page = await new_page(dashboard)
    await sign_in(page, "/system")
    banner = page.locator(".health-banner")
    await expect(page.locator(".connection")).to_have_text("Live")
    await expect(banner).to_be_hidden()

    await asyncio.to_thread(private_postgres.stop)
    await expect(banner).to_be_visible(timeout=20_000)
    await expect(banner).to_have_attribute("role", "alert")
    await expect(banner).to_contain_text("the database cannot be reached")

    await page.get_by_role("link", name="Fleet").click()  # on every page, not only where it appeared
    await expect(banner).to_be_visible()

    await asyncio.to_thread(private_postgres.resume)
    await expect(banner).to_be_hidden(timeout=20_000)
