"""The fleet in pages (GET /api/nodes and the WebSocket's get_nodes): order, cursor, size bounds, gzip.

Before paging, one request serialised the whole fleet on the event loop (10,000 nodes: 14 MB in about
two seconds, uncompressed whatever the client accepted).
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import orjson
from http_helpers import Api

from hub import EVENT_STATE_CHANGED


def mac(i: int) -> str:
    return ":".join(f"{b:02x}" for b in (0x020000000000 + i).to_bytes(6, "big"))


def populate(api: Api, count: int, entities: int = 1, start: int = 0) -> None:
    registry = api.hub.registry
    for i in range(start, start + count):
        node = registry.get_or_register(mac(i), name=f"node {count - i:04d}")  # names sort the other way round
        for k in range(entities):
            registry.ensure_entity(node, f"reading_{k}")


async def pages(api: Api, **params: Any) -> list[dict[str, Any]]:
    """Every page of GET /api/nodes with these parameters, following next."""
    found = []
    cursor = None
    while True:
        query = {key: str(value) for key, value in params.items()}
        if cursor is not None:
            query["cursor"] = cursor
        status, body = await api.call("GET", "/api/nodes", params=query)
        assert status == 200, body
        found.append(body)
        cursor = body["next"]
        if cursor is None:
            return found


async def test_pages_follow_the_id_order_and_cover_the_fleet_once(api: Api) -> None:
    populate(api, 25)
    walked = await pages(api, limit=10)
    assert [len(page["nodes"]) for page in walked] == [10, 10, 5]
    ids = [node["node_id"] for page in walked for node in page["nodes"]]
    assert ids == [mac(i) for i in range(25)]
    assert walked[0]["next"] == mac(9) and all(page["total"] == 25 for page in walked)
    status, body = await api.call("GET", "/api/nodes")
    assert len(body["nodes"]) == 25 and body["next"] is None  # the default limit holds a small fleet


async def test_nodes_added_or_removed_between_pages_are_neither_repeated_nor_skipped(api: Api) -> None:
    populate(api, 30)
    status, first = await api.call("GET", "/api/nodes", params={"limit": "10"})
    registry = api.hub.registry
    registry.remove(mac(9))  # the cursor's own node goes: the next page still starts right after it
    registry.remove(mac(15))
    populate(api, 1, start=100)
    status, second = await api.call("GET", "/api/nodes", params={"limit": "10", "cursor": first["next"]})
    assert [n["node_id"] for n in second["nodes"]] == [mac(i) for i in (10, 11, 12, 13, 14, 16, 17, 18, 19, 20)]
    status, third = await api.call("GET", "/api/nodes", params={"limit": "10", "cursor": second["next"]})
    assert [n["node_id"] for n in third["nodes"]] == [*(mac(i) for i in range(21, 30)), mac(100)]
    assert third["next"] is None


async def test_filters_and_pages_combine(api: Api) -> None:
    populate(api, 40)
    registry = api.hub.registry
    for i in range(0, 40, 3):
        registry.update_node(registry.get(mac(i)), tags=["beta"], area="Greenhouse")
    for params in ({"tag": "beta"}, {"area": "greenhouse", "q": "node"}):
        walked = await pages(api, limit=4, **params)
        assert [n["node_id"] for page in walked for n in page["nodes"]] == [mac(i) for i in range(0, 40, 3)]
        assert [len(page["nodes"]) for page in walked] == [4, 4, 4, 2]


async def test_a_page_ends_once_it_holds_about_5000_entities(make_api) -> None:
    api = await make_api(config={"hub": {"limits": {"max_entities_per_node": 1200}}})
    populate(api, 12, entities=1100)
    walked = await pages(api, limit=1000)
    # 5 nodes reach 5,500 entities: the page ends there, whatever the limit; nothing is lost.
    assert [len(page["nodes"]) for page in walked] == [5, 5, 2]
    assert sum(len(n["entities"]) for page in walked for n in page["nodes"]) == 12 * 1100


async def test_a_node_with_very_many_entities_is_encoded_whole(make_api) -> None:
    api = await make_api(config={"hub": {"limits": {"max_entities_per_node": 5000}}})
    populate(api, 1, entities=4321)  # encoded in slices, yielding to the loop between them
    node = api.hub.registry.get(mac(0))
    api.hub.registry.report_states(node, {"reading_4000": 1.5}, ts=api.clock())
    status, body = await api.call("GET", "/api/nodes")
    [listed] = body["nodes"]
    assert listed == node.as_dict() and len(listed["entities"]) == 4321
    status, single = await api.call("GET", f"/api/nodes/{mac(0)}")
    assert single == listed


async def test_large_answers_are_gzipped_when_the_client_accepts_it(api: Api) -> None:
    populate(api, 200, entities=3)
    url = api.url + "/api/nodes"
    plain = None
    for accept, encoded in [
        ("identity", False),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0, deflate", False),
        ("deflate", False),
    ]:
        headers = {**api.headers(), "Accept-Encoding": accept}
        async with api.session.get(url, headers=headers, auto_decompress=False) as response:
            raw = await response.read()
            assert response.status == 200
            assert response.headers.get("Content-Encoding") == ("gzip" if encoded else None), accept
            assert "Accept-Encoding" in response.headers.get("Vary", "")
        body = gzip.decompress(raw) if encoded else raw
        plain = plain or body
        assert orjson.loads(body) == orjson.loads(plain)
        if encoded:
            assert len(raw) * 5 < len(body)
    # Small answers are not worth compressing; answers to POSTs never are (they may carry tokens).
    async with api.session.get(api.url + "/api/health", headers={"Accept-Encoding": "gzip"}) as response:
        assert "Content-Encoding" not in response.headers


async def test_websocket_get_nodes_pages_like_the_rest_api(api: Api) -> None:
    populate(api, 25)
    ws = await api.ws()
    ids: list[str] = []
    cursor = None
    for msg_id in range(1, 10):
        request: dict[str, Any] = {"id": msg_id, "type": "get_nodes", "limit": 10}
        if cursor:
            request["cursor"] = cursor
        await ws.send_json(request)
        answer = await ws.receive_json()
        assert answer["success"], answer
        ids += [node["node_id"] for node in answer["result"]["nodes"]]
        cursor = answer["result"]["next"]
        if cursor is None:
            break
    assert ids == [mac(i) for i in range(25)] and msg_id == 3
    for msg_id, bad in enumerate([{"limit": 0}, {"limit": 1001}, {"limit": "10"}, {"cursor": ""}], start=10):
        await ws.send_json({"id": msg_id, "type": "get_nodes", **bad})
        answer = await ws.receive_json()
        assert not answer["success"] and answer["error"]["code"] == "invalid_format", bad
    await ws.close()


async def test_events_during_a_page_come_after_it(make_api) -> None:
    """A page is encoded in chunks; a change made meanwhile must not reach the client before the older page.

    The dashboard subscribes, then loads pages; an event it applied before receiving the page would be
    overwritten by the page's older state.  Here the node's "counter" changes at every turn of the event
    loop while its page is encoded: no event may arrive before the page with a value the page has not seen.
    """
    api = await make_api(config={"hub": {"limits": {"max_entities_per_node": 5000}}})
    registry = api.hub.registry
    node = registry.get_or_register(mac(1))
    registry.ensure_entity(node, "counter")  # first, so the page holds it early and changes go on after
    for k in range(4999):
        registry.ensure_entity(node, f"reading_{k}")
    registry.report_states(node, {"counter": 0}, ts=api.clock())
    ws = await api.ws()
    await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": EVENT_STATE_CHANGED})
    assert (await ws.receive_json())["success"]

    loop = asyncio.get_running_loop()
    counter = 0

    def tick() -> None:
        nonlocal counter
        counter += 1
        registry.report_states(node, {"counter": counter}, ts=api.clock())
        if counter < 2000:
            loop.call_soon(tick)

    await ws.send_json({"id": 2, "type": "get_nodes"})
    loop.call_soon(tick)
    before: list[int] = []
    while True:
        message = await ws.receive_json()
        if message["type"] == "result":
            break
        before.append(message["event"]["data"]["new_state"])
    [listed] = message["result"]["nodes"]
    in_page = next(e["state"] for e in listed["entities"] if e["key"] == "counter")
    after = []
    while counter < 2000 or (after and after[-1] < counter) or not after:
        after.append((await ws.receive_json())["event"]["data"]["new_state"])
    assert before == list(range(1, in_page + 1)), (before[-5:], in_page)  # nothing newer than the page
    assert after == list(range(in_page + 1, counter + 1))  # then every change since, in order
    assert len(after) > 1  # the loop did turn while the page was encoded: the case under test happened
    await ws.close()
