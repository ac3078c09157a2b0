"""Authentication against the real server: bearer tokens, sign-in, refresh, sessions, long-lived tokens."""

from __future__ import annotations

import os
import stat

from http_helpers import OWNER, OWNER_PASSWORD, Api, assert_error

from hub.plugins.http.auth.store import FILE_NAME


async def test_health_is_public_and_everything_else_needs_a_token(api: Api) -> None:
    status, body = await api.call("GET", "/api/health", auth=False)
    assert (status, body) == (200, {"status": "ok", "checks": {"database": "none"}})
    for method, path in [
        ("GET", "/api/nodes"),
        ("GET", "/api/system"),
        ("GET", "/metrics"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/auth/tokens"),
        ("PATCH", "/api/nodes/x"),
    ]:
        status, body = await api.call(method, path, auth=False)
        assert_error(status, body, 401, "missing_token")


async def test_bad_and_malformed_tokens_are_refused(api: Api) -> None:
    for token in ["nonsense", "hat.0123456789abcdef." + "A" * 43, api.token + "x", api.refresh_token]:
        status, body = await api.call("GET", "/api/nodes", token=token)
        assert_error(status, body, 401, "invalid_token")
    status, body = await api.call("GET", "/api/nodes", auth=False, headers={"Authorization": "Basic abc"})
    assert_error(status, body, 401, "missing_token")


async def test_access_token_expires_and_refresh_issues_a_new_one(api: Api) -> None:
    assert (await api.call("GET", "/api/nodes"))[0] == 200
    api.clock.advance(1801)
    status, body = await api.call("GET", "/api/nodes")
    assert_error(status, body, 401, "token_expired")
    status, body = await api.call("POST", "/api/auth/token", auth=False, json={"refresh_token": api.refresh_token})
    assert status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 1800
    assert (await api.call("GET", "/api/nodes", token=body["access_token"]))[0] == 200


async def test_login_success_and_failure(api: Api) -> None:
    status, body = await api.call("POST", "/api/auth/login", auth=False, json={"username": OWNER, "password": "wrong"})
    assert_error(status, body, 401, "invalid_credentials")
    api.clock.advance(5)  # past the throttle delay of one failure
    status, body = await api.call(
        "POST", "/api/auth/login", auth=False, json={"username": "nobody", "password": OWNER_PASSWORD}
    )
    assert_error(status, body, 401, "invalid_credentials")
    api.clock.advance(5)
    status, body = await api.call(
        "POST", "/api/auth/login", auth=False, json={"username": OWNER.upper(), "password": OWNER_PASSWORD}
    )
    assert status == 200, body
    status, me = await api.call("GET", "/api/auth/me", token=body["access_token"])
    assert status == 200 and me["username"] == OWNER and me["is_owner"] and me["token_kind"] == "access"


async def test_logout_revokes_the_session_and_its_access_tokens(api: Api) -> None:
    status, _ = await api.call("POST", "/api/auth/logout")
    assert status == 204
    status, body = await api.call("GET", "/api/nodes")
    assert_error(status, body, 401, "invalid_token")
    status, body = await api.call("POST", "/api/auth/token", auth=False, json={"refresh_token": api.refresh_token})
    assert_error(status, body, 401, "invalid_refresh_token")


async def test_long_lived_token_lifecycle_through_the_api(api: Api) -> None:
    status, created = await api.call(
        "POST", "/api/auth/tokens", json={"name": "prometheus", "password": OWNER_PASSWORD}
    )
    assert status == 201 and created["kind"] == "long_lived" and created["name"] == "prometheus"
    token = created["token"]
    assert token.startswith("hlt.")
    api.clock.advance(10 * 86400)  # far beyond any access token's life
    status, text = await api.call("GET", "/metrics", token=token)
    assert status == 200 and "hub_http_responses_total" in text
    status, listing = await api.call("GET", "/api/auth/tokens", token=token)
    assert status == 200
    mine = [t for t in listing["tokens"] if t["id"] == created["id"]]
    assert mine and mine[0]["current"] and "token" not in mine[0] and "secret_hash" not in mine[0]
    status, _ = await api.call("DELETE", f"/api/auth/tokens/{created['id']}", token=token)
    assert status == 204
    status, body = await api.call("GET", "/metrics", token=token)
    assert_error(status, body, 401, "invalid_token")
    await api.refresh()
    status, body = await api.call("DELETE", f"/api/auth/tokens/{created['id']}")
    assert_error(status, body, 404, "token_not_found")


async def test_long_lived_token_with_lifetime_expires(api: Api) -> None:
    status, created = await api.call(
        "POST", "/api/auth/tokens", json={"name": "short", "lifetime_days": 1, "password": OWNER_PASSWORD}
    )
    assert status == 201
    assert (await api.call("GET", "/api/nodes", token=created["token"]))[0] == 200
    api.clock.advance(86401)
    status, body = await api.call("GET", "/api/nodes", token=created["token"])
    assert_error(status, body, 401, "token_expired")


async def test_token_revoked_by_another_process_stops_working_at_once(api: Api) -> None:
    """What `hub token revoke` does: edit the auth file from outside; the server re-reads it."""
    from hub.plugins.http.auth.manager import AuthManager
    from hub.plugins.http.auth.store import AuthStore

    status, created = await api.call("POST", "/api/auth/tokens", json={"name": "script", "password": OWNER_PASSWORD})
    assert (await api.call("GET", "/api/nodes", token=created["token"]))[0] == 200
    other = AuthManager(AuthStore.in_dir(api.hub.data_dir), api.clock)
    assert other.revoke(created["id"])
    status, body = await api.call("GET", "/api/nodes", token=created["token"])
    assert_error(status, body, 401, "invalid_token")


async def test_auth_file_holds_hashes_only_and_is_private(api: Api) -> None:
    _status, created = await api.call(
        "POST", "/api/auth/tokens", json={"name": "secret-check", "password": OWNER_PASSWORD}
    )
    path = api.hub.data_dir / FILE_NAME
    content = path.read_text()
    assert created["token"].split(".")[2] not in content
    assert api.refresh_token.split(".")[2] not in content
    assert OWNER_PASSWORD not in content and "$argon2id$" in content
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_sessions_are_named_by_browser_and_show_address_and_last_use(api) -> None:
    phone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.0 Mobile/15E148 Safari/604.1"
    )
    status, session = await api.call(
        "POST",
        "/api/auth/login",
        auth=False,
        json={"username": OWNER, "password": OWNER_PASSWORD},
        headers={"User-Agent": phone},
    )
    assert status == 200, session
    api.clock.advance(30)
    status, body = await api.call("GET", "/api/auth/tokens", token=session["access_token"])
    assert status == 200
    [mine] = [t for t in body["tokens"] if t["current"]]
    assert mine["name"] == "Mobile Safari 17 on iOS (iPhone)"
    assert mine["address"] == "127.0.0.1"
    assert mine["last_used"] == api.clock()  # this very request used it
