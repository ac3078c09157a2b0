"""select_nodes: one node, a list, tags, an area, "not on version V", and their intersections."""

from __future__ import annotations

import pytest

from hub import InvalidTarget, NodeRegistry, select_nodes
from hub.core.events import EventBus
from hub.testing import FakeClock

A, B, C, D = (f"24:6f:28:aa:00:0{i}" for i in range(1, 5))


@pytest.fixture
def registry() -> NodeRegistry:
    clock = FakeClock(1000.0)
    registry = NodeRegistry(EventBus(clock=clock), clock=clock)
    fleet = {
        A: ("Greenhouse 2", ["beta", "relay-board"], "1.2.3"),
        B: ("greenhouse 2", ["beta"], "1.2.2"),
        C: ("Barn", ["relay-board"], None),
        D: (None, [], "1.2.3"),
    }
    for node_id, (area, tags, version) in fleet.items():
        registry.update_node(registry.get_or_register(node_id), area=area, tags=tags, firmware_version=version)
    return registry


def ids(registry: NodeRegistry, target: dict) -> list[str]:
    return [node.node_id for node in select_nodes(registry, target)]


def test_one_node_or_a_list_in_any_mac_spelling(registry):
    assert ids(registry, {"nodes": ["24-6F-28-AA-00-02"]}) == [B]
    assert ids(registry, {"nodes": [C, "246f28aa0001", A]}) == [A, C]  # sorted, duplicates once
    assert ids(registry, {"nodes": []}) == []


def test_tags_must_all_be_carried_and_are_normalised(registry):
    assert ids(registry, {"tags": ["beta"]}) == [A, B]
    assert ids(registry, {"tags": [" BETA ", "relay-board"]}) == [A]
    assert ids(registry, {"tags": ["nope"]}) == []


def test_area_ignores_case_and_spacing(registry):
    assert ids(registry, {"area": "GREENHOUSE  2"}) == [A, B]
    assert ids(registry, {"area": "barn"}) == [C]


def test_not_version_includes_nodes_that_never_reported_one(registry):
    assert ids(registry, {"not_version": "1.2.3"}) == [B, C]


def test_keys_intersect(registry):
    assert ids(registry, {"area": "greenhouse 2", "tags": ["beta"], "not_version": "1.2.3"}) == [B]
    assert ids(registry, {"nodes": [A, C, D], "tags": ["relay-board"]}) == [A, C]
    assert ids(registry, {"nodes": [D], "area": "barn"}) == []


@pytest.mark.parametrize(
    "target",
    [
        {},
        {"everything": True},
        {"nodes": A},
        {"tags": "beta"},
        {"tags": ["a,b"]},
        {"area": ""},
        {"area": None},
        {"not_version": ""},
        {"not_version": 3},
        [A],
    ],
)
def test_malformed_targets_are_refused(registry, target):
    with pytest.raises(InvalidTarget) as caught:
        select_nodes(registry, target)
    assert caught.value.code == "invalid_target" and isinstance(caught.value, ValueError)


def test_unknown_nodes_are_named_not_skipped(registry):
    with pytest.raises(InvalidTarget, match="'aa:aa:aa:aa:aa:aa', 'x'") as caught:
        select_nodes(registry, {"nodes": [A, "aa:aa:aa:aa:aa:aa", "x"]})
    assert caught.value.code == "node_not_found"
