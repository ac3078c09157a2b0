"""First run: the owner is created with the one-time token `hub run` logs, never by a stranger."""

from __future__ import annotations

import logging
import re

import aiohttp
import pytest
from http_helpers import Api, assert_error

from hub import DATA_HTTP_URL
from hub.testing import create_user_and_token, wait_until

PASSWORD = "a long enough password"


async def _token_from_log(caplog: pytest.LogCaptureFixture) -> str:
    """The token of the link, printed once start-up has gone quiet."""

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if "onboarding#token=" in r.getMessage()]

    await wait_until(messages, message="the onboarding link to be printed")
    assert len(messages()) == 1, messages()
    return re.search(r"onboarding#token=([A-Za-z0-9_-]+)", messages()[0]).group(1)


async def test_onboarding_link_creates_the_owner_once(make_api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    api: Api = await make_api(owner=False)
    token = await _token_from_log(caplog)
    assert await api.call("GET", "/api/onboarding", auth=False) == (200, {"required": True})
    # No account exists, so nothing can be signed in to, and no data is readable.
    status, body = await api.call("GET", "/api/nodes", auth=False)
    assert_error(status, body, 401)

    body_in = {"token": token, "username": "alice", "password": PASSWORD}
    status, body = await api.call("POST", "/api/onboarding", auth=False, json=body_in)
    assert status == 201, body
    assert body["user"]["username"] == "alice" and body["user"]["is_owner"]
    assert (await api.call("GET", "/api/nodes", token=body["access_token"]))[0] == 200
    assert await api.call("GET", "/api/onboarding", auth=False) == (200, {"required": False})

    # Single use: replaying the same link (or any other) cannot create a second owner.
    status, body = await api.call("POST", "/api/onboarding", auth=False, json={**body_in, "username": "mallory"})
    assert_error(status, body, 403, "onboarding_done")


async def test_wrong_or_expired_onboarding_token_is_refused_and_counted(make_api, caplog) -> None:
    caplog.set_level(logging.WARNING)
    api: Api = await make_api(owner=False)
    token = await _token_from_log(caplog)
    status, body = await api.call(
        "POST", "/api/onboarding", auth=False, json={"token": "guess", "username": "mallory", "password": PASSWORD}
    )
    assert_error(status, body, 401, "invalid_onboarding_token")
    assert api.hub.metrics.value("http_login_failures", kind="onboarding_token") == 1
    api.clock.advance(3601)  # past the link's lifetime (and the throttle delay)
    status, body = await api.call(
        "POST", "/api/onboarding", auth=False, json={"token": token, "username": "alice", "password": PASSWORD}
    )
    assert_error(status, body, 401, "invalid_onboarding_token")
    assert await api.call("GET", "/api/onboarding", auth=False) == (200, {"required": True})


async def test_a_user_created_from_the_cli_closes_the_onboarding_window(make_api, caplog) -> None:
    from hub.plugins.http.auth.manager import AuthManager
    from hub.plugins.http.auth.store import AuthStore

    caplog.set_level(logging.WARNING)
    api: Api = await make_api(owner=False)
    token = await _token_from_log(caplog)
    await AuthManager(AuthStore.in_dir(api.hub.data_dir), api.clock).create_user("owner", PASSWORD)
    status, body = await api.call(
        "POST", "/api/onboarding", auth=False, json={"token": token, "username": "late", "password": PASSWORD}
    )
    assert_error(status, body, 403, "onboarding_done")


async def test_no_onboarding_link_when_a_user_exists(hub_factory, caplog) -> None:
    caplog.set_level(logging.WARNING)
    hub = await hub_factory({"http": {"port": 0}}, builtins=("hub.plugins.http",), start=False)
    await create_user_and_token(hub)  # before the hub starts, as `hub user create` does
    await hub.async_start()
    assert not [r for r in caplog.records if "onboarding" in r.getMessage()]
    body_in = {"token": "x", "username": "late", "password": PASSWORD}
    async with aiohttp.ClientSession() as session:
        async with session.post(hub.data[DATA_HTTP_URL] + "/api/onboarding", json=body_in) as response:
            assert_error(response.status, await response.json(), 403, "onboarding_done")


async def test_onboarding_validates_the_new_account(make_api, caplog) -> None:
    caplog.set_level(logging.WARNING)
    api: Api = await make_api(owner=False)
    token = await _token_from_log(caplog)
    for body_in in [
        {"token": token, "username": "alice", "password": "short"},
        {"token": token, "username": "has space", "password": PASSWORD},
        {"token": token, "username": "alice\n", "password": PASSWORD},
        {"token": token, "username": "alice"},
    ]:
        status, body = await api.call("POST", "/api/onboarding", auth=False, json=body_in)
        assert_error(status, body, 400, "invalid_request")
    # Validation failures did not consume the token.
    status, body = await api.call(
        "POST", "/api/onboarding", auth=False, json={"token": token, "username": "alice", "password": PASSWORD}
    )
    assert status == 201, body


async def test_the_link_is_printed_framed_after_start(make_api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    await make_api(owner=False)
    await _token_from_log(caplog)
    messages = [r.getMessage() for r in caplog.records]
    link = next(i for i, m in enumerate(messages) if "onboarding#token=" in m)
    started = next(i for i, m in enumerate(messages) if "listening on" in m)
    assert started < link  # after start-up, not among its lines
    lines = messages[link].splitlines()
    framed = next(i for i, line in enumerate(lines) if "onboarding#token=" in line)
    assert lines[framed - 1] == lines[framed + 1] == "=" * 72  # the link on its own line, between rules
