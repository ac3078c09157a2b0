"""Areas and tags over REST: PATCH (set, clear, add/remove tags), filters on GET /api/nodes, GET /api/areas."""

from __future__ import annotations

from http_helpers import Api, assert_error

from hub.core.const import EVENT_NODE_UPDATED, REASON_MESSAGE, STATUS_OFFLINE, STATUS_ONLINE

A, B, C, D = (f"24:6f:28:aa:00:0{i}" for i in range(1, 5))


def populate(api: Api) -> None:
    """A and B in greenhouse 2 (spelt two ways), C in the barn, D nowhere; tags and statuses mixed."""
    registry = api.hub.registry
    for node_id, name, area, tags, status in [
        (A, "Pump", "Greenhouse 2", ["beta", "relay-board"], STATUS_ONLINE),
        (B, "Valve", "greenhouse 2", ["beta"], STATUS_OFFLINE),
        (C, "Fan", "Barn", ["relay-board"], STATUS_ONLINE),
        (D, "Spare", None, [], None),
    ]:
        node = registry.get_or_register(node_id, name=name)
        registry.update_node(node, area=area, tags=tags)
        if status is not None:
            registry.set_status(node, status, REASON_MESSAGE)


async def nodes(api: Api, **params: str) -> list[str]:
    status, body = await api.call("GET", "/api/nodes", params=params)
    assert status == 200, body
    return [node["node_id"] for node in body["nodes"]]


async def test_patch_sets_and_clears_area_and_tags(api: Api) -> None:
    populate(api)
    events = []
    api.hub.bus.listen(EVENT_NODE_UPDATED, events.append)
    status, body = await api.call("PATCH", f"/api/nodes/{D}", json={"area": " Shed ", "tags": ["Spare", "beta"]})
    assert status == 200 and (body["area"], body["tags"]) == ("Shed", ["beta", "spare"])
    assert events[-1].data == {"node_id": D, "changes": {"area": "Shed", "tags": ["beta", "spare"]}}
    status, body = await api.call("PATCH", f"/api/nodes/{D}", json={"add_tags": ["canary"], "remove_tags": ["beta"]})
    assert status == 200 and body["tags"] == ["canary", "spare"]
    status, body = await api.call("PATCH", f"/api/nodes/{D.upper()}", json={"area": None, "tags": []})
    assert status == 200 and (body["area"], body["tags"]) == (None, [])
    node = api.hub.registry.get(D)
    assert (node.area, node.tags) == (None, [])
    status, body = await api.call("GET", f"/api/nodes/{D}")
    assert (body["area"], body["tags"]) == (None, [])


async def test_bad_area_and_tags_are_400_and_change_nothing(api: Api) -> None:
    populate(api)
    for body in [
        {"area": ""},
        {"area": "   "},
        {"area": "x" * 101},
        {"area": 3},
        {"tags": "beta"},
        {"tags": [""]},
        {"tags": ["a,b"]},
        {"tags": ["x" * 41]},
        {"tags": [f"t{i}" for i in range(33)]},
        {"add_tags": [f"t{i}" for i in range(31)]},  # 33 with the two it has
        {"tags": ["x"], "add_tags": ["y"]},
        {"name": "renamed", "remove_tags": [7]},
    ]:
        status, answer = await api.call("PATCH", f"/api/nodes/{A}", json=body)
        assert_error(status, answer, 400)
    node = api.hub.registry.get(A)
    assert (node.name, node.area, node.tags) == ("Pump", "Greenhouse 2", ["beta", "relay-board"])


async def test_filter_by_area_and_tags(api: Api) -> None:
    populate(api)
    assert await nodes(api, area="GREENHOUSE  2") == [A, B]  # sorted by name: Pump, Valve
    assert await nodes(api, tag="Beta") == [A, B]
    assert await nodes(api, tag="beta,relay-board") == [A]
    assert await nodes(api, area="greenhouse 2", status="offline") == [B]
    assert await nodes(api, area="barn", tag="beta") == []
    assert await nodes(api, tag="nope") == []
    for params in [{"area": ""}, {"area": "x" * 101}, {"tag": ""}, {"tag": "a,,b"}, {"tag": "x" * 41}]:
        status, body = await api.call("GET", "/api/nodes", params=params)
        assert_error(status, body, 400)


async def test_areas_and_tags_with_counts(api: Api) -> None:
    populate(api)
    status, body = await api.call("GET", "/api/areas")
    assert status == 200
    assert body == {
        "areas": [
            {"area": "Barn", "total": 1, "online": 1, "offline": 0, "unknown": 0},
            {"area": "Greenhouse 2", "total": 2, "online": 1, "offline": 1, "unknown": 0},  # tie: first spelling
        ],
        "no_area": {"total": 1, "online": 0, "offline": 0, "unknown": 1},
        "tags": [
            {"tag": "beta", "total": 2, "online": 1, "offline": 1, "unknown": 0},
            {"tag": "relay-board", "total": 2, "online": 2, "offline": 0, "unknown": 0},
        ],
    }
    api.hub.registry.update_node(api.hub.registry.get(C), area="greenhouse 2")
    _, body = await api.call("GET", "/api/areas")
    assert [(area["area"], area["total"]) for area in body["areas"]] == [("greenhouse 2", 3)]  # most nodes' spelling


async def test_websocket_get_nodes_filters_alike(api: Api) -> None:
    populate(api)
    ws = await api.ws()
    await ws.send_json({"id": 1, "type": "get_nodes", "area": "greenhouse 2", "tag": ["relay-board"]})
    reply = await ws.receive_json(timeout=10)
    assert reply["success"] and [node["node_id"] for node in reply["result"]["nodes"]] == [A]
    await ws.send_json({"id": 2, "type": "get_nodes", "tag": "a,b,"})
    reply = await ws.receive_json(timeout=10)
    assert not reply["success"] and reply["error"]["code"] == "invalid_format"
    await ws.close()
