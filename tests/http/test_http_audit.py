"""The audit trail: every request that could change something is recorded with who, what, when and the outcome."""

from __future__ import annotations

import pytest
from http_helpers import OWNER_PASSWORD, Api

from hub import REASON_MESSAGE, STATUS_ONLINE

MAC = "24:6f:28:aa:00:09"


@pytest.fixture(params=["sqlite", "postgresql"])
async def api(request, make_api) -> Api:
    storage = {"db_url": request.getfixturevalue("hub_postgres_url")} if request.param == "postgresql" else {}
    return await make_api(builtins=("hub.plugins.storage", "hub.plugins.http"), config={"storage": storage})


async def test_changes_are_recorded_with_user_method_path_and_outcome(api: Api) -> None:
    registry = api.hub.registry
    registry.set_status(registry.get_or_register(MAC, name="pump"), STATUS_ONLINE, REASON_MESSAGE)
    status, _ = await api.call("PATCH", f"/api/nodes/{MAC}", json={"name": "Pump 2"})
    assert status == 200
    status, _ = await api.call("PATCH", f"/api/nodes/{MAC}", json={"colour": "red"})
    assert status == 400
    status, _ = await api.call("POST", "/api/auth/login", auth=False, json={"username": "owner", "password": "no"})
    assert status == 401
    await api.call("GET", "/api/nodes")  # a read is not a change
    status, body = await api.call("GET", "/api/audit")
    assert status == 200
    records = [(r["username"], r["method"], r["path"], r["status"]) for r in body["records"]]
    assert records == [
        (None, "POST", "/api/auth/login", 401),
        ("owner", "PATCH", f"/api/nodes/{MAC}", 400),
        ("owner", "PATCH", f"/api/nodes/{MAC}", 200),
    ]
    assert {r["remote"] for r in body["records"]} == {"127.0.0.1"}
    assert [r["token_id"] is not None for r in body["records"]] == [False, True, True]
    status, older = await api.call("GET", f"/api/audit?before_id={body['records'][0]['id']}&limit=1")
    assert status == 200 and [r["id"] for r in older["records"]] == [body["records"][1]["id"]]


async def test_the_audit_trail_is_kept_across_a_restart(api: Api, make_api, hub_factory) -> None:
    status, created = await api.call("POST", "/api/auth/tokens", json={"name": "grafana", "password": OWNER_PASSWORD})
    assert status == 201
    await api.hub.async_stop()
    config = {"storage": {"db_url": api.hub.config["storage"]["db_url"]}, "hub": {"data_dir": str(api.hub.data_dir)}}
    again = await make_api(builtins=("hub.plugins.storage", "hub.plugins.http"), config=config, owner=False)
    again.token = created["token"]
    status, body = await again.call("GET", "/api/audit")
    assert status == 200
    assert [(r["method"], r["path"], r["status"]) for r in body["records"]][-1] == ("POST", "/api/auth/tokens", 201)


async def test_anonymous_refusals_are_recorded_at_a_bounded_rate(api: Api) -> None:
    # Found by tests/security: every refused request without a token wrote a row (and a log line), so anyone who
    # could reach the port could grow the hub's database without limit while changing nothing else.
    from hub.plugins.http.audit import ANONYMOUS_PER_MINUTE

    for _ in range(ANONYMOUS_PER_MINUTE + 40):
        status, _ = await api.call("DELETE", f"/api/nodes/{MAC}", auth=False)
        assert status == 401
    status, _ = await api.call("POST", "/api/auth/tokens", json={"name": "x", "password": OWNER_PASSWORD})
    assert status == 201  # a request with a token is recorded whatever the anonymous rate
    _, body = await api.call("GET", "/api/audit?limit=1000")
    anonymous = [r for r in body["records"] if r["username"] is None]
    assert len(anonymous) == ANONYMOUS_PER_MINUTE
    assert body["records"][0]["path"] == "/api/auth/tokens"
    assert api.hub.metrics.value("http_audit_suppressed") == 40
    api.clock.advance(30)  # half a minute later: room for half a minute's worth again
    for _ in range(ANONYMOUS_PER_MINUTE):
        await api.call("DELETE", f"/api/nodes/{MAC}", auth=False)
    _, body = await api.call("GET", "/api/audit?limit=1000")
    assert len([r for r in body["records"] if r["username"] is None]) == ANONYMOUS_PER_MINUTE * 3 // 2
