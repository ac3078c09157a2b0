"""Sessions: refresh tokens rotate (reuse of a spent one ends the session), sessions have an absolute lifetime
and a per-user cap, and a long-lived token needs the password again."""

from __future__ import annotations

import logging

from http_helpers import OWNER, OWNER_PASSWORD, Api, assert_error

from hub.plugins.http.auth.access import AccessTokens
from hub.plugins.http.auth.tokens import parse_token

GOOD = {"username": OWNER, "password": OWNER_PASSWORD}


async def exchange(api: Api, refresh_token: str) -> tuple[int, dict]:
    return await api.call("POST", "/api/auth/token", auth=False, json={"refresh_token": refresh_token})


async def test_refresh_tokens_rotate_and_a_spent_one_ends_the_session(api: Api, caplog) -> None:
    first = api.refresh_token
    status, body = await exchange(api, first)
    assert status == 200, body
    second, access = body["refresh_token"], body["access_token"]
    assert second != first and parse_token(second).id == parse_token(first).id  # same session, new secret
    assert (await api.call("GET", "/api/nodes", token=access))[0] == 200
    status, body = await exchange(api, second)
    assert status == 200
    third = body["refresh_token"]
    # The first token comes back (a copy an attacker kept): the whole session ends, for both holders.
    with caplog.at_level(logging.WARNING):
        assert_error(*(await exchange(api, first)), 401, "refresh_token_reused")
    assert "spent refresh token" in caplog.text
    assert_error(*(await exchange(api, third)), 401, "invalid_refresh_token")
    assert_error(*(await api.call("GET", "/api/nodes", token=access)), 401, "invalid_token")
    assert_error(*(await api.call("GET", "/api/nodes", token=body["access_token"])), 401, "invalid_token")
    # Reuse is not counted as password guessing.
    assert api.hub.metrics.value("http_login_failures", kind="refresh_token") == 1  # only the `third` attempt


async def test_a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed(make_api) -> None:
    api: Api = await make_api({"refresh_token_lifetime": 600, "session_lifetime": 3600, "access_token_lifetime": 60})
    for _ in range(5):  # used every 10 minutes: the sliding expiry alone would keep it alive forever
        api.clock.advance(590)
        await api.refresh()
    _, listing = await api.call("GET", "/api/auth/tokens")
    session = next(token for token in listing["tokens"] if token["current"])
    assert session["expires"] <= session["created"] + 3600
    api.clock.advance(700)  # 3650 s after sign-in, 110 s after the last use
    assert_error(*(await exchange(api, api.refresh_token)), 401, "invalid_refresh_token")


async def test_sessions_per_user_are_capped_least_recently_used_first(make_api) -> None:
    api: Api = await make_api({"max_sessions_per_user": 3})
    sessions = [api.refresh_token]
    for _ in range(4):
        api.clock.advance(10)
        status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD)
        assert status == 200, body
        sessions.append(body["refresh_token"])
    _, listing = await api.call("GET", "/api/auth/tokens", token=body["access_token"])
    kept = {token["id"] for token in listing["tokens"] if token["kind"] == "refresh"}
    assert kept == {parse_token(token).id for token in sessions[-3:]}
    assert_error(*(await exchange(api, sessions[0])), 401, "invalid_refresh_token")
    assert (await exchange(api, sessions[-1]))[0] == 200


async def test_a_long_lived_token_needs_the_password_again(api: Api) -> None:
    status, body = await api.call("POST", "/api/auth/tokens", json={"name": "script"})
    assert_error(status, body, 400, "invalid_request")
    status, body = await api.call("POST", "/api/auth/tokens", json={"name": "script", "password": "not it"})
    assert_error(status, body, 403, "reauthentication_failed")
    assert api.hub.metrics.value("http_login_failures", kind="password") == 1
    api.clock.advance(1.1)
    status, body = await api.call("POST", "/api/auth/tokens", json={"name": "script", "password": OWNER_PASSWORD})
    assert status == 201, body
    assert (await api.call("GET", "/api/nodes", token=body["token"]))[0] == 200


def test_access_tokens_expire_and_are_revoked_without_rebuilding_the_table() -> None:
    now = [1000.0]
    tokens = AccessTokens(lambda: now[0], lifetime=60)
    early = [tokens.issue("u", "session-a") for _ in range(1500)]
    now[0] += 30
    late = [tokens.issue("u", "session-b") for _ in range(1500)]
    assert len(tokens) == 3000
    now[0] += 31  # the early ones expired: the next issue drops them from the front of the queue
    tokens.issue("u", "session-b")
    assert len(tokens) == 1501
    assert tokens.find(parse_token(early[0])) is None and tokens.find(parse_token(late[0])) is not None
    tokens.drop_roots({"session-b"})
    assert len(tokens) == 0 and tokens.find(parse_token(late[-1])) is None
