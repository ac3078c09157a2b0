"""The WebSocket API in Home Assistant's shape: auth flow, results, subscriptions, filtering, ping."""

from __future__ import annotations

import asyncio

import aiohttp
from http_helpers import OWNER_PASSWORD, Api

from hub.core.const import EVENT_NODE_UPDATED, EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from hub.testing import wait_until

MAC_A = "aa:bb:cc:dd:ee:01"
MAC_B = "aa:bb:cc:dd:ee:02"


def report(api: Api, mac: str, value: float) -> None:
    registry = api.hub.registry
    node = registry.get_or_register(mac)
    registry.ensure_entity(node, "temperature", unit="°C")
    registry.report_states(node, {"temperature": value}, ts=api.clock())


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict:
    return await asyncio.wait_for(ws.receive_json(), 5)


async def test_auth_flow_ok_and_invalid(api: Api) -> None:
    ws = await api.ws()  # auth_required → auth → auth_ok, asserted inside
    await ws.close()
    async with api.session.ws_connect(api.url + "/api/websocket") as ws:
        required = await receive(ws)
        assert required["type"] == "auth_required" and "hub_version" in required
        await ws.send_json({"type": "auth", "access_token": "hat.0123456789abcdef." + "x" * 43})
        invalid = await receive(ws)
        assert invalid["type"] == "auth_invalid" and invalid["message"]
        assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    async with api.session.ws_connect(api.url + "/api/websocket") as ws:
        await receive(ws)
        await ws.send_json({"id": 1, "type": "ping"})  # anything before auth is refused
        assert (await receive(ws))["type"] == "auth_invalid"
    # An expired access token is refused too; a long-lived token works.
    _status, created = await api.call("POST", "/api/auth/tokens", json={"name": "ws", "password": OWNER_PASSWORD})
    api.clock.advance(1801)
    async with api.session.ws_connect(api.url + "/api/websocket") as ws:
        await receive(ws)
        await ws.send_json({"type": "auth", "access_token": api.token})
        assert (await receive(ws)) == {"type": "auth_invalid", "message": "access token expired; refresh it"}
    ws = await api.ws(created["token"])
    await ws.close()


async def test_ping_results_and_errors(api: Api) -> None:
    ws = await api.ws()
    await ws.send_json({"id": 1, "type": "ping"})
    assert await receive(ws) == {"id": 1, "type": "pong"}
    await ws.send_json({"id": 2, "type": "no_such_command"})
    reply = await receive(ws)
    assert reply["id"] == 2 and reply["type"] == "result" and reply["success"] is False
    assert reply["error"]["code"] == "unknown_command"
    await ws.send_json({"id": 2, "type": "ping"})
    assert (await receive(ws))["error"]["code"] == "id_reuse"
    await ws.send_json({"id": "three", "type": "ping"})
    assert (await receive(ws))["error"]["code"] == "invalid_format"
    await ws.send_str("not json")
    reply = await receive(ws)
    assert reply["id"] is None and reply["error"]["code"] == "invalid_format"
    await ws.send_json({"id": 4, "type": "subscribe_events", "event_type": 5})
    assert (await receive(ws))["error"]["code"] == "invalid_format"
    await ws.send_json({"id": 5, "type": "unsubscribe_events", "subscription": 99})
    assert (await receive(ws))["error"]["code"] == "not_found"
    await ws.send_json({"id": 6, "type": "ping"})
    assert await receive(ws) == {"id": 6, "type": "pong"}  # errors never closed the connection
    await ws.close()


async def test_get_nodes_and_get_node(api: Api) -> None:
    report(api, MAC_A, 20.0)
    ws = await api.ws()
    await ws.send_json({"id": 1, "type": "get_nodes"})
    reply = await receive(ws)
    assert reply["success"] and [n["node_id"] for n in reply["result"]["nodes"]] == [MAC_A]
    await ws.send_json({"id": 2, "type": "get_node", "node_id": "AA-BB-CC-DD-EE-01"})
    reply = await receive(ws)
    assert reply["success"] and reply["result"]["entities"][0]["state"] == 20.0
    await ws.send_json({"id": 3, "type": "get_node", "node_id": MAC_B})
    assert (await receive(ws))["error"]["code"] == "node_not_found"
    await ws.close()


async def test_subscribe_filter_by_type_and_node_then_unsubscribe(api: Api) -> None:
    ws = await api.ws()
    await ws.send_json(
        {"id": 1, "type": "subscribe_events", "event_type": EVENT_STATE_REPORTED, "node_id": MAC_B.upper()}
    )
    assert await receive(ws) == {"id": 1, "type": "result", "success": True, "result": None}
    await ws.send_json({"id": 2, "type": "subscribe_events", "event_type": EVENT_NODE_UPDATED})
    assert (await receive(ws))["success"]
    report(api, MAC_A, 1.0)  # other node: filtered out
    report(api, MAC_B, 2.0)
    api.hub.registry.update_node(api.hub.registry.get(MAC_A), name="Renamed")
    first, second = await receive(ws), await receive(ws)
    assert first["id"] == 1 and first["type"] == "event"
    assert first["event"]["event_type"] == EVENT_STATE_REPORTED
    assert first["event"]["data"]["node_id"] == MAC_B and first["event"]["data"]["states"] == {"temperature": 2.0}
    assert second["id"] == 2 and second["event"]["data"] == {"node_id": MAC_A, "changes": {"name": "Renamed"}}

    await ws.send_json({"id": 3, "type": "unsubscribe_events", "subscription": 1})
    assert (await receive(ws))["success"]
    report(api, MAC_B, 3.0)
    await ws.send_json({"id": 4, "type": "ping"})
    assert await receive(ws) == {"id": 4, "type": "pong"}  # no event from subscription 1 came before it
    await ws.close()


async def test_subscribe_all_events_and_one_encoding_per_event(api: Api) -> None:
    clients = [await api.ws() for _ in range(3)]
    for ws in clients:
        await ws.send_json({"id": 7, "type": "subscribe_events"})
        assert (await receive(ws))["success"]
    encoded_before = api.hub.metrics.value("websocket_events_encoded")
    report(api, MAC_A, 5.0)  # node_registered, entity_registered, state_changed, state_reported
    for ws in clients:
        types = [(await receive(ws))["event"]["event_type"] for _ in range(4)]
        assert types == ["node_registered", "entity_registered", EVENT_STATE_CHANGED, EVENT_STATE_REPORTED]
    assert api.hub.metrics.value("websocket_events_encoded") - encoded_before == 4  # not 12
    _status, system = await api.call("GET", "/api/system")
    assert system["websocket"]["clients"] == 3
    for ws in clients:
        await ws.close()


async def test_no_bus_listener_without_subscribers(api: Api) -> None:
    assert not api.hub.bus.has_listeners(EVENT_STATE_CHANGED)
    ws = await api.ws()
    await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": EVENT_STATE_CHANGED})
    await receive(ws)
    assert api.hub.bus.has_listeners(EVENT_STATE_CHANGED)
    await ws.close()
    await wait_until(lambda: not api.hub.bus.has_listeners(EVENT_STATE_CHANGED), message="the bus listener to go")


async def test_revoking_the_token_closes_its_connections(api: Api) -> None:
    _status, created = await api.call("POST", "/api/auth/tokens", json={"name": "live", "password": OWNER_PASSWORD})
    ws = await api.ws(created["token"])
    await api.call("DELETE", f"/api/auth/tokens/{created['id']}")
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
