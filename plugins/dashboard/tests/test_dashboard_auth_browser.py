"""In a real browser: nobody gets in without signing in; first-run onboarding; sessions, expiry, tokens."""

from __future__ import annotations

import asyncio
import logging
import re

from dashboard_testing import OWNER, OWNER_PASSWORD, TIMEOUT, require_playwright, sign_in

require_playwright()

from playwright.async_api import expect

from hub.testing import wait_until


async def test_refused_without_a_token(page, dashboard) -> None:
    page.expected_console.append("status of 401")  # the tokenless request is refused, on purpose
    await page.goto("/")
    await page.wait_for_url("**/signin")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.goto("/nodes/aa:bb:cc:dd:ee:ff")
    await page.wait_for_url(re.compile(r"/signin\?next=%2Fnodes%2Faa%3Abb"))
    # The page shell is public, the data is not: the browser gets 401 from the API itself.
    answer = await page.evaluate("fetch('/api/nodes').then(async r => [r.status, await r.json()])")
    assert answer[0] == 401 and answer[1]["error"]["code"] == "missing_token"
    ws = await page.evaluate(
        """() => new Promise(resolve => {
             const ws = new WebSocket(`ws://${location.host}/api/websocket`);
             ws.onmessage = (m) => { const msg = JSON.parse(m.data);
               if (msg.type === 'auth_required') ws.send(JSON.stringify({type: 'auth', access_token: 'hat.forged'}));
               else resolve(msg.type); };
           })"""
    )
    assert ws == "auth_invalid"


async def test_sign_in_lands_on_next_and_sign_out_ends_the_session(page, dashboard) -> None:
    page.expected_console += ["status of 401", "status of 429"]  # a wrong password, then throttled: on purpose
    await page.goto("/system")
    await page.wait_for_url("**/signin?next=%2Fsystem")
    await page.get_by_label("Username").fill(OWNER)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    await page.get_by_label("Password").fill(OWNER_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    # Throttled: after a failure the next attempt must wait a second, and the page says so.
    await expect(page.get_by_role("alert")).to_contain_text("try again in 1 s")
    await asyncio.sleep(1.0)
    await page.get_by_label("Password").fill(OWNER_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/system")
    await expect(page.get_by_role("heading", name="System")).to_be_visible()
    await expect(page.locator(".user")).to_have_text(OWNER)
    assert [t["kind"] for t in await _sessions(dashboard)] == ["refresh"]

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/signin")
    assert await _sessions(dashboard) == []  # the session is revoked on the hub, not just forgotten here
    await page.goto("/")
    await page.wait_for_url("**/signin")
    assert await page.evaluate("sessionStorage.length + localStorage.length") == 0


async def test_an_expired_access_token_is_refreshed_and_a_revoked_session_signs_out(page, dashboard) -> None:
    page.expected_console.append("status of 401")  # expired and revoked tokens are refused, on purpose
    await sign_in(page)
    # An access token the hub does not know (as after a hub restart, or expiry): one refresh, no sign-in.
    old = await page.evaluate("JSON.parse(sessionStorage.getItem('hub.session')).access_token")
    await page.evaluate(
        "const s = JSON.parse(sessionStorage.getItem('hub.session'));"
        "s.access_token = 'hat.expired.token'; sessionStorage.setItem('hub.session', JSON.stringify(s))"
    )
    await page.reload()
    await expect(page.locator(".connection")).to_have_text("Live", timeout=TIMEOUT)
    await page.get_by_role("link", name="Tokens").click()
    await expect(page.locator("tr", has_text="this browser")).to_be_visible()
    new = await page.evaluate("JSON.parse(sessionStorage.getItem('hub.session')).access_token")
    assert new not in (old, "hat.expired.token")

    # The session revoked elsewhere (the token page of another browser, `hub token revoke`): back to sign-in.
    (session,) = await _sessions(dashboard)
    status, body = await dashboard.call("DELETE", f"/api/auth/tokens/{session['id']}", token=dashboard.owner.token)
    assert status == 204, body
    await page.get_by_role("link", name="System").click()
    await page.wait_for_url("**/signin?next=%2Fsystem")
    await expect(page.get_by_role("alert")).to_contain_text("sign in again")


async def test_keep_me_signed_in_survives_a_new_tab(page, dashboard, new_page) -> None:
    await page.goto("/signin")
    await page.get_by_label("Username").fill(OWNER)
    await page.get_by_label("Password").fill(OWNER_PASSWORD)
    await page.get_by_label("Keep me signed in").check()
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator(".connection")).to_have_text("Live")
    second = await page.context.new_page()  # same browser profile, new tab: only localStorage is shared
    await second.goto("/tokens")
    await expect(second.get_by_role("heading", name="Tokens", exact=True)).to_be_visible()
    assert second.url.endswith("/tokens")
    await second.close()


async def test_onboarding_link_creates_the_owner(make_dashboard, new_page, caplog) -> None:
    caplog.set_level(logging.WARNING)
    dashboard = await make_dashboard(owner=False)

    def links() -> list[str]:
        return [m for r in caplog.records for m in re.findall(r"http://\S+/onboarding#token=\S+", r.getMessage())]

    await wait_until(links, message="the onboarding link, printed once start-up is quiet")
    (link,) = links()
    page = await new_page(dashboard)
    await page.goto("/signin")
    await expect(page.locator(".callout")).to_contain_text("no owner account yet")

    await page.goto(link)
    assert "#token" not in page.url  # read once, then dropped from the address bar and history
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password", exact=True).fill("a fine passphrase")
    await page.get_by_label("Repeat the password").fill("a different one")
    await page.get_by_role("button", name="Create account and sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("The passwords differ.")
    await page.get_by_label("Repeat the password").fill("a fine passphrase")
    await page.get_by_role("button", name="Create account and sign in").click()
    await page.wait_for_url(lambda url: url.endswith("/"))
    await expect(page.locator(".user")).to_have_text("alice")
    assert await dashboard.call("GET", "/api/onboarding") == (200, {"required": False})


async def test_tokens_page_creates_a_token_shown_once_and_revokes_it(page, dashboard) -> None:
    page.expected_console.append("status of 403")  # the wrong password, on purpose
    await sign_in(page, "/tokens")
    await page.get_by_label("Name").fill("prometheus")
    await page.get_by_label("Your password").fill("not the password")
    await page.get_by_role("button", name="Create token").click()
    await expect(page.get_by_role("alert")).to_contain_text("password is not correct")
    await wait_until(lambda: _may_sign_in(dashboard), message="the one-second delay after a wrong password")
    await page.get_by_label("Your password").fill(OWNER_PASSWORD)
    await page.get_by_role("button", name="Create token").click()
    token = await page.get_by_label("The new token").input_value()
    assert token.startswith("hlt.")
    assert (await dashboard.call("GET", "/api/nodes", token=token))[0] == 200

    await page.reload()
    row = page.locator('table[data-kind="long_lived"] tr', has_text="prometheus")
    await expect(row).to_be_visible()
    assert token not in await page.content()  # shown once: never again
    await row.get_by_role("button", name="Revoke").click()
    await row.get_by_role("button", name="Revoke").click()  # the confirmation
    await expect(row).to_have_count(0)
    status, body = await dashboard.call("GET", "/api/nodes", token=token)
    assert status == 401, body


def _may_sign_in(dashboard) -> bool:
    """True once the hub would check the owner's password again from this browser (loopback)."""
    from hub.plugins.http import DATA_SERVER
    from hub.web import ApiError

    try:
        dashboard.hub.data[DATA_SERVER].guard.check("127.0.0.1", OWNER)
    except ApiError:
        return False
    return True


async def _sessions(dashboard) -> list[dict]:
    """The owner's signed-in sessions on the hub, through the API (with the owner's long-lived token)."""
    status, body = await dashboard.call("GET", "/api/auth/tokens", token=dashboard.owner.token)
    assert status == 200, body
    return [token for token in body["tokens"] if token["kind"] == "refresh"]
