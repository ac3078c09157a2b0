"""Failed sign-ins: throttled per address, then banned; counted in metrics; onboarding tokens count too."""

from __future__ import annotations

import asyncio

from http_helpers import OWNER, OWNER_PASSWORD, Api, assert_error

BAD = {"username": OWNER, "password": "not the password"}
GOOD = {"username": OWNER, "password": OWNER_PASSWORD}


async def test_early_retry_is_throttled_without_checking_the_password(api: Api) -> None:
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=BAD)
    assert_error(status, body, 401, "invalid_credentials")
    # Even the right password is refused while the delay runs: guessing costs time, not hub CPU.
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD)
    assert_error(status, body, 429, "too_many_requests")
    assert api.hub.metrics.value("http_login_throttled") == 1
    api.clock.advance(1.1)
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD)
    assert status == 200, body
    # Success clears the record: the next failure starts from scratch.
    status, _ = await api.call("POST", "/api/auth/login", auth=False, json=BAD)
    assert status == 401


async def test_repeated_failures_ban_the_address_from_the_whole_api(make_api) -> None:
    api: Api = await make_api({"login_attempts_threshold": 3, "ban_time": 600})
    for attempt in range(3):
        status, body = await api.call("POST", "/api/auth/login", auth=False, json=BAD)
        assert_error(status, body, 401, "invalid_credentials")
        api.clock.advance(2**attempt + 0.1)
    assert api.hub.metrics.value("http_login_failures", kind="password") == 3
    assert api.hub.metrics.value("http_bans") == 1
    # Banned: the right password, a valid token, even health, all refused with a Retry-After.
    for method, path, kwargs in [
        ("POST", "/api/auth/login", {"json": GOOD, "auth": False}),
        ("GET", "/api/nodes", {}),
        ("GET", "/api/health", {"auth": False}),
    ]:
        async with api.session.request(
            method, api.url + path, headers=api.headers(), **{k: v for k, v in kwargs.items() if k != "auth"}
        ) as response:
            body = await response.json()
            assert_error(response.status, body, 403, "banned")
            assert 0 < int(response.headers["Retry-After"]) <= 600
    api.clock.advance(601)
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD)
    assert status == 200, body


async def test_bad_refresh_tokens_count_as_failures(make_api) -> None:
    api: Api = await make_api({"login_attempts_threshold": 2})
    fake = "hrt.0123456789abcdef." + "B" * 43
    status, body = await api.call("POST", "/api/auth/token", auth=False, json={"refresh_token": fake})
    assert_error(status, body, 401, "invalid_refresh_token")
    api.clock.advance(1.1)
    status, body = await api.call("POST", "/api/auth/token", auth=False, json={"refresh_token": "garbage"})
    assert_error(status, body, 401, "invalid_refresh_token")
    status, body = await api.call("GET", "/api/nodes")
    assert_error(status, body, 403, "banned")


async def test_forwarded_for_is_believed_only_from_trusted_proxies(make_api) -> None:
    api: Api = await make_api({"login_attempts_threshold": 1, "trusted_proxies": ["127.0.0.1"]})
    # Through the trusted proxy, the ban falls on the client address it reports, not on the proxy.
    status, _ = await api.call(
        "POST", "/api/auth/login", auth=False, json=BAD, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert status == 401
    status, body = await api.call("GET", "/api/nodes", headers={"X-Forwarded-For": "203.0.113.7"})
    assert_error(status, body, 403, "banned")
    assert (await api.call("GET", "/api/nodes", headers={"X-Forwarded-For": "203.0.113.8"}))[0] == 200
    assert (await api.call("GET", "/api/nodes"))[0] == 200


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(make_api) -> None:
    api: Api = await make_api({"login_attempts_threshold": 1})
    status, _ = await api.call(
        "POST", "/api/auth/login", auth=False, json=BAD, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert status == 401
    # The forged header did not move the ban away from the real peer (loopback).
    status, body = await api.call("GET", "/api/nodes", headers={"X-Forwarded-For": "203.0.113.9"})
    assert_error(status, body, 403, "banned")


async def test_a_burst_of_parallel_guesses_gets_one_password_check(api: Api) -> None:
    async def guess() -> int:
        status, _ = await api.call("POST", "/api/auth/login", auth=False, json=BAD)
        return status

    statuses = await asyncio.gather(*(guess() for _ in range(10)))
    assert sorted(statuses) == [401] + [429] * 9
    assert api.hub.metrics.value("http_login_failures", kind="password") == 1
