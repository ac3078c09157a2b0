"""The registry's limits (hub: limits:): nodes, new nodes a minute, entities and attributes; and its id order.

Past a limit the registry raises LimitExceeded (with the reason an integration counts) and changes nothing;
nodes the operator named (config.yaml, storage's restore) are never refused.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from hub import ConfigError, LimitExceeded, Limits, fit_attributes
from hub.core.config import apply_node_config
from hub.core.const import EVENT_ENTITY_REGISTERED, EVENT_NODE_REGISTERED, EVENT_NODE_UPDATED
from hub.core.events import MATCH_ALL, EventBus
from hub.core.registry import Node, NodeRegistry
from hub.testing import FakeClock, make_hub


def mac(i: int) -> str:
    return ":".join(f"{b:02x}" for b in (0x020000000000 + i).to_bytes(6, "big"))


def make(**limits: int) -> tuple[NodeRegistry, dict[str, list[dict]], FakeClock]:
    clock = FakeClock(1000.0)
    bus = EventBus(clock=clock)
    events: dict[str, list[dict]] = defaultdict(list)
    bus.listen(MATCH_ALL, lambda e: events[e.event_type].append(e.data))
    return NodeRegistry(bus, clock=clock, limits=Limits(**limits)), events, clock


def refused(call, reason: str) -> str:
    with pytest.raises(LimitExceeded) as caught:
        call()
    assert caught.value.reason == reason
    return str(caught.value)


def test_max_nodes_refuses_new_nodes_but_not_known_ones() -> None:
    registry, events, _ = make(max_nodes=3)
    nodes = [registry.get_or_register(mac(i)) for i in range(3)]
    message = refused(lambda: registry.get_or_register(mac(3)), "node_limit")
    assert "max_nodes 3" in message and mac(3) in message
    assert mac(3) not in registry and len(events[EVENT_NODE_REGISTERED]) == 3
    assert registry.get_or_register(mac(1)) is nodes[1]  # a known node is never refused
    registry.remove(mac(0))
    registry.get_or_register(mac(3))  # room again


def test_new_nodes_per_minute_is_a_token_bucket() -> None:
    registry, _, clock = make(new_nodes_per_minute=60)
    for i in range(60):  # a whole minute's worth at once: a fleet powering up together
        registry.get_or_register(mac(i))
    refused(lambda: registry.get_or_register(mac(60)), "node_rate_limit")
    clock.advance(0.5)
    refused(lambda: registry.get_or_register(mac(60)), "node_rate_limit")
    clock.advance(0.5)  # one a second comes back
    registry.get_or_register(mac(60))
    refused(lambda: registry.get_or_register(mac(61)), "node_rate_limit")
    clock.advance(-3600)  # a clock stepped back neither refills nor breaks the bucket
    refused(lambda: registry.get_or_register(mac(61)), "node_rate_limit")
    clock.advance(3600 + 3600)
    for i in range(61, 121):  # refilled to one minute's worth, not to two hours'
        registry.get_or_register(mac(i))
    refused(lambda: registry.get_or_register(mac(121)), "node_rate_limit")


def test_operator_named_and_restored_nodes_are_never_refused() -> None:
    registry, _, _ = make(max_nodes=1, new_nodes_per_minute=1)
    registry.restore([Node(node_id=mac(i), name=f"restored {i}") for i in range(5)])
    apply_node_config(registry, {mac(10): {"name": "Pump"}, mac(11): {}})
    assert len(registry) == 7 and registry.get(mac(10)).name == "Pump"
    refused(lambda: registry.get_or_register(mac(12)), "node_limit")


def test_max_entities_per_node() -> None:
    registry, events, _ = make(max_entities_per_node=2)
    node = registry.get_or_register(mac(1))
    registry.ensure_entity(node, "a")
    registry.ensure_entity(node, "b")
    message = refused(lambda: registry.ensure_entity(node, "c"), "entity_limit")
    assert "'c'" in message and "max_entities_per_node 2" in message
    assert list(node.entities) == ["a", "b"] and len(events[EVENT_ENTITY_REGISTERED]) == 2
    assert registry.ensure_entity(node, "a") is node.entities["a"]  # an existing one is still returned
    registry.remove_entity(node, "a")
    registry.ensure_entity(node, "c")


def test_attribute_limits_refuse_the_whole_change_and_change_nothing() -> None:
    registry, events, _ = make(max_attributes=8, max_attribute_bytes=64)
    node = registry.get_or_register(mac(1))
    registry.update_node(node, attributes={f"a{i}": i for i in range(8)})
    refused(lambda: registry.update_node(node, attributes={"a0": 100, "new": 1}), "attribute_limit")
    refused(lambda: registry.update_node(node, name="x", attributes={"a1": "y" * 65}), "attribute_limit")
    refused(lambda: registry.update_node(node, attributes={"a1": {"nested": ["y" * 60]}}), "attribute_limit")
    assert node.attributes == {f"a{i}": i for i in range(8)} and node.name == mac(1)
    assert len(events[EVENT_NODE_UPDATED]) == 1
    registry.update_node(node, attributes={"a0": "changed", "a1": "é" * 32})  # existing keys, 64 bytes: fine
    refused(lambda: registry.ensure_entity(node, "e", attributes={f"k{i}": i for i in range(9)}), "attribute_limit")
    refused(lambda: registry.ensure_entity(node, "e", attributes={"k": "z" * 100}), "attribute_limit")
    assert "e" not in node.entities


def test_fit_attributes_keeps_what_fits() -> None:
    limits = Limits(max_attributes=8, max_attribute_bytes=64)
    current = {f"a{i}": i for i in range(6)}
    fitting, problem = fit_attributes(current, {"a0": 1, "n1": 1, "n2": 2, "n3": 3, "big": "x" * 65}, limits)
    assert fitting == {"a0": 1, "n1": 1, "n2": 2}
    assert problem is not None and problem.reason == "attribute_limit"
    assert "1 attribute(s) over max_attributes 8 ('n3')" in str(problem) and "max_attribute_bytes 64 ('big')" in str(
        problem
    )
    assert fit_attributes(current, {"a0": 2, "n1": True}, limits) == ({"a0": 2, "n1": True}, None)


def test_nodes_after_walks_in_id_order_across_changes() -> None:
    registry, _, _ = make()
    for i in (5, 1, 9, 3):
        registry.get_or_register(mac(i))
    assert [n.node_id for n in registry.nodes_after()] == [mac(1), mac(3), mac(5), mac(9)]
    assert [n.node_id for n in registry.nodes_after(mac(3))] == [mac(5), mac(9)]
    assert [n.node_id for n in registry.nodes_after(mac(4))] == [mac(5), mac(9)]  # a cursor whose node is gone
    registry.remove(mac(5))
    registry.get_or_register(mac(7))
    assert [n.node_id for n in registry.nodes_after(mac(3))] == [mac(7), mac(9)]
    registry.restore([Node(node_id=mac(0), name="restored")])
    assert [n.node_id for n in registry.nodes_after()] == [mac(0), mac(1), mac(3), mac(7), mac(9)]
    registry.restore([Node(node_id=mac(7), name="replaced"), Node(node_id=mac(8), name="new")])  # one at a time too
    assert [n.name for n in registry.nodes_after(mac(3))] == ["replaced", "new", mac(9)]


def test_limits_come_from_config_and_are_checked() -> None:
    hub = make_hub({"hub": {"limits": {"max_nodes": 5, "max_entities_per_node": 7}}}, builtins=())
    assert hub.registry.limits == Limits(max_nodes=5, max_entities_per_node=7)
    with pytest.raises(ConfigError) as caught:
        make_hub({"hub": {"limits": {"max_nodes": 0, "max_attributes": 2, "max_nodez": 1}}}, builtins=())
    text = "\n".join(caught.value.messages)
    assert "hub -> limits -> max_nodes: value must be at least 1" in text
    assert "hub -> limits -> max_attributes: value must be at least 8" in text
    assert "unknown key 'max_nodez', did you mean 'max_nodes'?" in text
