"""The nodes API: list/filter, detail with entities, rename/describe, delete; validation and error shape."""

from __future__ import annotations

from http_helpers import Api, assert_error

from hub.core.const import EVENT_NODE_REMOVED, EVENT_NODE_UPDATED, REASON_MESSAGE, STATUS_OFFLINE, STATUS_ONLINE

MAC_A = "aa:bb:cc:dd:ee:01"
MAC_B = "aa:bb:cc:dd:ee:02"
MAC_C = "aa:bb:cc:dd:ee:03"


def populate(api: Api) -> None:
    registry = api.hub.registry
    for mac, name, status in [
        (MAC_A, "Greenhouse north", STATUS_ONLINE),
        (MAC_B, "Greenhouse south", STATUS_OFFLINE),
        (MAC_C, "Garage", STATUS_ONLINE),
    ]:
        node = registry.get_or_register(mac, name=name)
        registry.ensure_entity(node, "temperature", unit="°C", device_class="temperature")
        registry.report_states(node, {"temperature": 21.5}, ts=api.clock())
        registry.set_status(node, status, REASON_MESSAGE)


async def test_list_and_filter(api: Api) -> None:
    populate(api)
    status, body = await api.call("GET", "/api/nodes")
    assert status == 200
    # In node id order (the order pages go in), the last page says so with next: null.
    assert [n["name"] for n in body["nodes"]] == ["Greenhouse north", "Greenhouse south", "Garage"]
    assert body["counts"] == {"online": 2, "offline": 1} and body["total"] == 3 and body["next"] is None
    entity = body["nodes"][0]["entities"][0]
    assert entity["key"] == "temperature" and entity["state"] == 21.5 and entity["unit"] == "°C"
    assert body["nodes"][0] == api.hub.registry.get(MAC_A).as_dict()  # the same shape as the events carry

    status, body = await api.call("GET", "/api/nodes", params={"status": "online"})
    assert [n["node_id"] for n in body["nodes"]] == [MAC_A, MAC_C]
    status, body = await api.call("GET", "/api/nodes", params={"q": "GREENHOUSE", "status": "offline"})
    assert [n["node_id"] for n in body["nodes"]] == [MAC_B]
    status, body = await api.call("GET", "/api/nodes", params={"q": "ee:03"})
    assert [n["node_id"] for n in body["nodes"]] == [MAC_C]


async def test_bad_query_parameters_are_400_in_the_error_shape(api: Api) -> None:
    for params in [
        {"status": "sleeping"},
        {"unknown": "1"},
        {"q": "x" * 101},
        [("status", "online"), ("status", "offline")],
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"cursor": ""},
        {"cursor": "x" * 101},
    ]:
        status, body = await api.call("GET", "/api/nodes", params=params)
        assert_error(status, body, 400, "invalid_request")


async def test_node_detail_accepts_any_mac_spelling(api: Api) -> None:
    populate(api)
    for spelling in [MAC_A, "AA-BB-CC-DD-EE-01", "AABBCCDDEE01"]:
        status, body = await api.call("GET", f"/api/nodes/{spelling}")
        assert status == 200 and body["node_id"] == MAC_A and body["entities"][0]["key"] == "temperature"
    status, body = await api.call("GET", "/api/nodes/ff:ff:ff:ff:ff:ff")
    assert_error(status, body, 404, "node_not_found")
    status, body = await api.call("GET", "/api/nodes/not-a-node")
    assert_error(status, body, 404, "node_not_found")


async def test_patch_renames_and_describes_through_the_registry(api: Api) -> None:
    populate(api)
    events = []
    api.hub.bus.listen(EVENT_NODE_UPDATED, events.append)
    status, body = await api.call(
        "PATCH", f"/api/nodes/{MAC_A}", json={"name": "  North  ", "description": "by the door"}
    )
    assert status == 200 and body["name"] == "North" and body["description"] == "by the door"
    assert api.hub.registry.get(MAC_A).name == "North"
    assert events[0].data == {"node_id": MAC_A, "changes": {"name": "North", "description": "by the door"}}


async def test_bad_patch_bodies_are_400(api: Api) -> None:
    populate(api)
    for kwargs in [
        {"json": {}},
        {"json": {"name": ""}},
        {"json": {"name": "   "}},
        {"json": {"name": 5}},
        {"json": {"name": "x" * 101}},
        {"json": {"status": "online"}},
        {"json": {"firmware_version": "1.0"}},
        {"json": ["name"]},
    ]:
        status, body = await api.call("PATCH", f"/api/nodes/{MAC_A}", **kwargs)
        assert status == 400, (kwargs, body)
        assert_error(status, body, 400)
    for data in [b"{not json", b"", b"\xff\xfe"]:
        status, body = await api.call("PATCH", f"/api/nodes/{MAC_A}", data=data)
        assert_error(status, body, 400, "invalid_json")
    status, body = await api.call("PATCH", "/api/nodes/ff:ff:ff:ff:ff:ff", json={"name": "x"})
    assert_error(status, body, 404, "node_not_found")
    assert api.hub.registry.get(MAC_A).name == "Greenhouse north"


async def test_delete_node(api: Api) -> None:
    populate(api)
    removed = []
    api.hub.bus.listen(EVENT_NODE_REMOVED, removed.append)
    status, body = await api.call("DELETE", f"/api/nodes/{MAC_B.upper()}")
    assert (status, body) == (204, None)
    assert MAC_B not in api.hub.registry and removed[0].data == {"node_id": MAC_B}
    status, body = await api.call("DELETE", f"/api/nodes/{MAC_B}")
    assert_error(status, body, 404, "node_not_found")


async def test_unknown_paths_and_methods_answer_in_the_error_shape(api: Api) -> None:
    populate(api)
    status, body = await api.call("GET", "/api/nope")
    assert_error(status, body, 404, "not_found")
    status, body = await api.call("PUT", "/api/nodes")
    assert_error(status, body, 405, "method_not_allowed")
    status, body = await api.call("PATCH", f"/api/nodes/{MAC_A}", data=b"x" * (2 * 1024 * 1024))
    assert_error(status, body, 413, "payload_too_large")
