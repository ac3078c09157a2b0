"""In a real browser: light, dark or the system's theme, remembered per browser; charts follow."""

from __future__ import annotations

from dashboard_testing import require_playwright, sign_in

require_playwright()

from playwright.async_api import expect

THEME = "document.documentElement.dataset.theme"


def is_theme(name: str) -> str:
    """A predicate for wait_for_function (a function: a bare expression would need eval, which the CSP forbids)."""
    return f"() => {THEME} === '{name}'"


async def test_theme_follows_the_system_until_chosen_and_is_remembered(new_page, dashboard) -> None:
    page = await new_page(dashboard, color_scheme="dark")
    await sign_in(page, "/system")
    theme = page.get_by_label("Theme")
    await expect(theme).to_have_value("system")
    assert await page.evaluate(f"() => {THEME}") == "dark"  # the system prefers dark
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")

    await theme.select_option("light")
    await page.wait_for_function(is_theme("light"))
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") != background
    await page.reload()
    await expect(page.get_by_label("Theme")).to_have_value("light")
    assert await page.evaluate(f"() => {THEME}") == "light"  # remembered, although the system prefers dark

    await page.emulate_media(color_scheme="light")
    await page.get_by_label("Theme").select_option("dark")
    await page.wait_for_function(is_theme("dark"))
    await page.get_by_label("Theme").select_option("system")
    await page.wait_for_function(is_theme("light"))  # back to the system's, which is light now
    await page.emulate_media(color_scheme="dark")
    await page.wait_for_function(is_theme("dark"))  # and it follows the system live
