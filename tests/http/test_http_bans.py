"""Failed sign-ins: throttled per address, then the address is banned from signing in (never from using a valid
token); forwarded hops parsed in every form proxies write; admins list and lift bans (API and CLI)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from http_helpers import OWNER, OWNER_PASSWORD, Api, assert_error

from hub.core import cli
from hub.plugins.http.remote import forwarded_client, parse_hop

BAD = {"username": OWNER, "password": "not the password"}
GOOD = {"username": OWNER, "password": OWNER_PASSWORD}


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def ban(api: Api, address: str | None = None, attempts: int = 1) -> None:
    """Fail ``attempts`` sign-ins from ``address`` (through the trusted loopback proxy), moving the clock on.

    Each call guesses another username, so only the address's record decides.
    """
    headers = via(address) if address else {}
    guess = {"username": f"guesser-{len(api.extra)}", "password": "not the password"}  # not the owner's throttle
    api.extra[guess["username"]] = address
    for attempt in range(attempts):
        status, body = await api.call("POST", "/api/auth/login", auth=False, json=guess, headers=headers)
        assert_error(status, body, 401, "invalid_credentials")
        api.clock.advance(2**attempt + 0.1)


async def test_early_retry_is_throttled_without_checking_the_password(api: Api) -> None:
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=BAD)
    assert_error(status, body, 401, "invalid_credentials")
    # Even the right password is refused while the delay runs: guessing costs time, not hub CPU.
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD)
    assert_error(status, body, 429, "too_many_requests")
    assert api.hub.metrics.value("http_login_throttled", reason="address") == 1
    api.clock.advance(1.1)
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD)
    assert status == 200, body
    # Success clears the record: the next failure starts from scratch.
    status, _ = await api.call("POST", "/api/auth/login", auth=False, json=BAD)
    assert status == 401


async def test_a_ban_stops_signing_in_but_not_valid_tokens(make_api) -> None:
    api: Api = await make_api({"login_attempts_threshold": 3, "ban_time": 600})
    await ban(api, attempts=3)
    assert api.hub.metrics.value("http_login_failures", kind="password") == 3
    assert api.hub.metrics.value("http_bans") == 1
    # Banned from signing in, even with the right password, with a Retry-After.
    async with api.session.post(api.url + "/api/auth/login", json=GOOD) as response:
        assert_error(response.status, await response.json(), 403, "banned")
        assert 0 < int(response.headers["Retry-After"]) <= 600
    # Whoever shares the address and is signed in is not cut off: tokens, refresh and health work.
    assert (await api.call("GET", "/api/nodes"))[0] == 200
    assert (await api.call("GET", "/api/health", auth=False))[0] == 200
    await api.refresh()
    assert (await api.call("GET", "/api/nodes"))[0] == 200
    # A wrong token is still just wrong.
    assert_error(*(await api.call("GET", "/api/nodes", token="nonsense")), 401, "invalid_token")
    api.clock.advance(601)
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD)
    assert status == 200, body


async def test_bad_refresh_tokens_count_as_failures(make_api) -> None:
    api: Api = await make_api({"login_attempts_threshold": 2})
    fake = "hrt.0123456789abcdef." + "B" * 43
    status, body = await api.call("POST", "/api/auth/token", auth=False, json={"refresh_token": fake})
    assert_error(status, body, 401, "invalid_refresh_token")
    status, body = await api.call("POST", "/api/auth/token", auth=False, json={"refresh_token": "garbage"})
    assert_error(status, body, 403, "banned")
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD)
    assert_error(status, body, 403, "banned")
    await api.refresh()  # the real refresh token still works from the banned address


async def test_forwarded_for_is_believed_only_from_trusted_proxies(make_api) -> None:
    api: Api = await make_api({"login_attempts_threshold": 1, "trusted_proxies": ["127.0.0.1"]})
    # Through the trusted proxy, the ban falls on the client address it reports, not on the proxy.
    await ban(api, "203.0.113.7")
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD, headers=via("203.0.113.7"))
    assert_error(status, body, 403, "banned")
    assert (await api.call("POST", "/api/auth/login", auth=False, json=GOOD, headers=via("203.0.113.8")))[0] == 200
    assert (await api.call("POST", "/api/auth/login", auth=False, json=GOOD))[0] == 200


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(make_api) -> None:
    api: Api = await make_api({"login_attempts_threshold": 1})
    await ban(api, "203.0.113.7")
    # The forged header did not move the ban away from the real peer (loopback).
    status, body = await api.call("POST", "/api/auth/login", auth=False, json=GOOD, headers=via("203.0.113.9"))
    assert_error(status, body, 403, "banned")


async def test_forwarded_hops_with_ports_and_brackets_ban_the_client_not_the_proxy(make_api) -> None:
    api: Api = await make_api({"login_attempts_threshold": 1, "trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]})
    await ban(api, "198.51.100.1, 10.0.0.5, [2001:db8::1]:443")  # the hop next to the proxy is the client
    await ban(api, "203.0.113.5:51234")
    await ban(api, "::ffff:192.0.2.9, 10.0.0.7:8080")
    _, body = await api.call("GET", "/api/auth/bans")
    assert sorted(entry["address"] for entry in body["bans"]) == ["192.0.2.9", "2001:db8::1", "203.0.113.5"]
    assert (await api.call("POST", "/api/auth/login", auth=False, json=GOOD))[0] == 200  # the proxy is not banned


@pytest.mark.parametrize(
    ("hop", "parsed"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7:443 ", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ('"[2001:db8::1]:443"', "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("unknown", None),
        ("_hidden", None),
        ("[2001:db8::1", None),
        ("1.2.3.4:5:6", None),
        ("", None),
    ],
)
def test_parse_hop(hop: str, parsed: str | None) -> None:
    address = parse_hop(hop)
    assert (str(address) if address else None) == parsed


def test_an_unparsable_hop_is_not_the_proxys_address() -> None:
    from ipaddress import ip_address, ip_network

    proxies = [ip_network("127.0.0.1/32")]
    assert forwarded_client(ip_address("127.0.0.1"), ["unknown"], proxies) == "unknown via 127.0.0.1"
    assert forwarded_client(ip_address("127.0.0.1"), ["unknown", "127.0.0.1"], proxies) == "unknown via 127.0.0.1"
    assert forwarded_client(ip_address("192.0.2.1"), ["203.0.113.1"], proxies) == "192.0.2.1"
    assert forwarded_client(ip_address("127.0.0.1"), ["203.0.113.1", "127.0.0.1"], proxies) == "203.0.113.1"


async def test_admins_list_and_lift_bans_and_it_is_audited(make_api, caplog) -> None:
    api: Api = await make_api({"login_attempts_threshold": 1, "ban_time": 900, "trusted_proxies": ["127.0.0.1"]})
    await ban(api, "203.0.113.7")
    await ban(api, "2001:db8::7")
    # Both endpoints need a token.
    assert_error(*(await api.call("GET", "/api/auth/bans", auth=False)), 401)
    assert_error(*(await api.call("DELETE", "/api/auth/bans/203.0.113.7", auth=False)), 401)
    status, body = await api.call("GET", "/api/auth/bans")
    assert status == 200
    assert [entry["address"] for entry in body["bans"]] == ["203.0.113.7", "2001:db8::7"]
    assert all(0 < entry["remaining_seconds"] <= 900 for entry in body["bans"])
    with caplog.at_level(logging.INFO, logger="hub.audit"):
        status, _ = await api.call("DELETE", "/api/auth/bans/2001:db8::7")
    assert status == 204
    assert any(
        "DELETE /api/auth/bans/2001:db8::7 -> 204" in r.getMessage() and OWNER in r.getMessage() for r in caplog.records
    )
    assert_error(*(await api.call("DELETE", "/api/auth/bans/2001:db8::7")), 404, "ban_not_found")
    assert (await api.call("POST", "/api/auth/login", auth=False, json=GOOD, headers=via("2001:db8::7")))[0] == 200
    status, body = await api.call("GET", "/api/auth/bans")
    assert [entry["address"] for entry in body["bans"]] == ["203.0.113.7"]


async def test_hub_ban_list_and_lift_on_the_command_line(make_api, capsys) -> None:
    api: Api = await make_api({"login_attempts_threshold": 1, "trusted_proxies": ["127.0.0.1"]})
    await ban(api, "2001:db8::9")

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, ["ban", *argv, "--url", api.url, "--token", api.token])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, _ = await run("list")
    assert code == 0 and "2001:db8::9" in out and "1 banned address(es)" in out
    code, out, _ = await run("list", "--json")
    assert code == 0 and [entry["address"] for entry in json.loads(out)] == ["2001:db8::9"]
    code, out, _ = await run("lift", "2001:db8::9")
    assert code == 0 and "Lifted" in out
    code, _, err = await run("lift", "2001:db8::9")
    assert code == 1 and "not banned" in err
    code, out, _ = await run("list")
    assert code == 0 and "0 banned address(es)" in out


async def test_a_burst_of_parallel_guesses_gets_one_password_check(api: Api) -> None:
    async def guess() -> int:
        status, _ = await api.call("POST", "/api/auth/login", auth=False, json=BAD)
        return status

    statuses = await asyncio.gather(*(guess() for _ in range(10)))
    assert sorted(statuses) == [401] + [429] * 9
    assert api.hub.metrics.value("http_login_failures", kind="password") == 1
