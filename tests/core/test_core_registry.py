"""NodeRegistry: which events fire when, state reported vs state changed, status, restore."""

from __future__ import annotations

from collections import defaultdict

import pytest

from hub.core.const import (
    EVENT_AVAILABILITY_REPORTED,
    EVENT_ENTITY_REGISTERED,
    EVENT_ENTITY_REMOVED,
    EVENT_NODE_REGISTERED,
    EVENT_NODE_REMOVED,
    EVENT_NODE_STATUS_CHANGED,
    EVENT_NODE_UPDATED,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    STATUS_UNKNOWN,
)
from hub.core.events import MATCH_ALL, EventBus
from hub.core.registry import Node, NodeRegistry
from hub.testing import FakeClock

N1 = "aa:bb:cc:dd:ee:01"


@pytest.fixture
def env():
    clock = FakeClock(1000.0)
    bus = EventBus(clock=clock)
    events: dict[str, list[dict]] = defaultdict(list)
    bus.listen(MATCH_ALL, lambda e: events[e.event_type].append(e.data))
    return NodeRegistry(bus, clock=clock), events, clock


def test_register_once(env):
    registry, events, clock = env
    node = registry.get_or_register(N1, name="Greenhouse")
    again = registry.get_or_register(N1, name="Other")
    assert node is again and node.name == "Greenhouse"
    assert (node.first_seen, node.status, node.last_seen) == (1000.0, STATUS_UNKNOWN, None)
    assert len(events[EVENT_NODE_REGISTERED]) == 1
    data = events[EVENT_NODE_REGISTERED][0]
    assert data["node_id"] == N1 and data["node"]["name"] == "Greenhouse" and data["node"]["entities"] == []
    assert N1 in registry and len(registry) == 1 and registry.get(N1) is node and registry.get("x") is None


def test_default_name_is_the_id(env):
    registry, _, _ = env
    assert registry.get_or_register(N1).name == N1


def test_update_node_fires_only_on_change(env):
    registry, events, _ = env
    node = registry.get_or_register(N1)
    assert registry.update_node(node, firmware_version="1.0", attributes={"ip": "10.0.0.2"}) == {
        "firmware_version": "1.0",
        "attributes": {"ip": "10.0.0.2"},
    }
    assert registry.update_node(node, firmware_version="1.0", attributes={"ip": "10.0.0.2"}) == {}
    assert registry.update_node(node, attributes={"ip": "10.0.0.2", "ssid": "lan"}) == {"attributes": {"ssid": "lan"}}
    assert node.attributes == {"ip": "10.0.0.2", "ssid": "lan"}  # merged
    assert [e["changes"] for e in events[EVENT_NODE_UPDATED]] == [
        {"firmware_version": "1.0", "attributes": {"ip": "10.0.0.2"}},
        {"attributes": {"ssid": "lan"}},
    ]


def test_update_node_refuses_other_fields(env):
    registry, events, _ = env
    node = registry.get_or_register(N1)
    with pytest.raises(ValueError, match="status"):
        registry.update_node(node, status="online")
    assert node.status == STATUS_UNKNOWN and not events[EVENT_NODE_UPDATED]


def test_entity_registered_once_with_metadata(env):
    registry, events, _ = env
    node = registry.get_or_register(N1)
    entity = registry.ensure_entity(node, "free_heap", unit="B", state_class="measurement")
    assert registry.ensure_entity(node, "free_heap", unit="kB") is entity
    assert entity.name == "Free heap" and entity.unit == "B" and entity.platform == "sensor"
    assert [e["entity"]["key"] for e in events[EVENT_ENTITY_REGISTERED]] == ["free_heap"]
    relay = registry.ensure_entity(node, "relay", "switch", name="Pump")
    assert (relay.platform, relay.name) == ("switch", "Pump")


def test_entity_removed_once(env):
    registry, events, _ = env
    node = registry.get_or_register(N1)
    registry.ensure_entity(node, "relay", "switch")
    assert registry.remove_entity(node, "relay")
    assert not registry.remove_entity(node, "relay")
    assert "relay" not in node.entities
    assert events[EVENT_ENTITY_REMOVED] == [{"node_id": N1, "key": "relay"}]
    assert registry.ensure_entity(node, "relay", "switch") is not None  # may come back


def test_state_reported_every_message_state_changed_only_on_change(env):
    registry, events, clock = env
    node = registry.get_or_register(N1)
    for key in ("temperature", "humidity"):
        registry.ensure_entity(node, key)
    clock.now = 1010.0
    registry.report_states(node, {"temperature": 21.5, "humidity": 60}, ts=1009.0, dedupe=7)
    registry.report_states(node, {"temperature": 21.5, "humidity": 61}, ts=1019.0, received=1020.5)
    registry.report_states(node, {"temperature": 21.5, "humidity": 61}, ts=1029.0)

    reported = events[EVENT_STATE_REPORTED]
    assert len(reported) == 3
    assert reported[0] == {"node_id": N1, "ts": 1009.0, "states": {"temperature": 21.5, "humidity": 60}, "dedupe": 7}
    changed = [(e["key"], e["old_state"], e["new_state"], e["ts"]) for e in events[EVENT_STATE_CHANGED]]
    assert changed == [
        ("temperature", None, 21.5, 1009.0),
        ("humidity", None, 60, 1009.0),
        ("humidity", 60, 61, 1019.0),
    ]
    temperature = node.entities["temperature"]
    assert (temperature.state, temperature.last_changed, temperature.last_reported) == (21.5, 1009.0, 1029.0)
    assert node.last_seen == 1010.0  # received defaults to now, not the node's own timestamp


def test_received_drives_last_seen(env):
    registry, _, _ = env
    node = registry.get_or_register(N1)
    registry.ensure_entity(node, "t")
    registry.report_states(node, {"t": 1}, ts=5.0, received=2000.0)
    assert node.last_seen == 2000.0


def test_first_report_of_none_is_a_change(env):
    """An entity's first state counts as changed even when it is None (last_changed was unset)."""
    registry, events, _ = env
    node = registry.get_or_register(N1)
    registry.ensure_entity(node, "t")
    registry.report_states(node, {"t": None}, ts=1.0)
    registry.report_states(node, {"t": None}, ts=2.0)
    assert [(e["old_state"], e["new_state"]) for e in events[EVENT_STATE_CHANGED]] == [(None, None)]


def test_state_changed_not_built_without_listeners():
    bus = EventBus()
    reported = []
    bus.listen(EVENT_STATE_REPORTED, reported.append)
    registry = NodeRegistry(bus)
    node = registry.get_or_register(N1)
    registry.ensure_entity(node, "t")
    registry.report_states(node, {"t": 1}, ts=1.0)
    assert len(reported) == 1 and node.entities["t"].state == 1


def test_report_states_for_an_unknown_entity_raises_before_changing_anything(env):
    registry, events, _ = env
    node = registry.get_or_register(N1)
    with pytest.raises(KeyError):
        registry.report_states(node, {"nope": 1}, ts=1.0)
    assert not events[EVENT_STATE_REPORTED]


def test_availability_is_reported_not_decided(env):
    registry, events, clock = env
    node = registry.get_or_register(N1)
    clock.now = 1100.0
    registry.report_availability(node, True)
    registry.report_availability(node, False, ts=1200.0)
    assert events[EVENT_AVAILABILITY_REPORTED] == [
        {"node_id": N1, "online": True, "ts": 1100.0},
        {"node_id": N1, "online": False, "ts": 1200.0},
    ]
    assert node.status == STATUS_UNKNOWN  # presence decides, not the registry
    assert node.last_seen == 1100.0  # an offline report (LWT, sent by the broker) is not hearing the node


def test_set_status_fires_only_on_change(env):
    registry, events, clock = env
    node = registry.get_or_register(N1)
    assert registry.set_status(node, STATUS_ONLINE, "message", ts=1001.0)
    assert not registry.set_status(node, STATUS_ONLINE, "message", ts=1002.0)
    clock.now = 1003.0
    assert registry.set_status(node, STATUS_OFFLINE, "lwt")
    assert events[EVENT_NODE_STATUS_CHANGED] == [
        {"node_id": N1, "old": STATUS_UNKNOWN, "new": STATUS_ONLINE, "reason": "message", "ts": 1001.0},
        {"node_id": N1, "old": STATUS_ONLINE, "new": STATUS_OFFLINE, "reason": "lwt", "ts": 1003.0},
    ]
    assert (node.status, node.status_reason, node.status_since) == (STATUS_OFFLINE, "lwt", 1003.0)
    assert registry.count_by_status() == {STATUS_OFFLINE: 1}


def test_remove(env):
    registry, events, _ = env
    registry.get_or_register(N1)
    assert registry.remove(N1)
    assert not registry.remove(N1)
    assert events[EVENT_NODE_REMOVED] == [{"node_id": N1}]
    assert N1 not in registry


def test_restore_fires_nothing_and_keeps_fields(env):
    registry, events, _ = env
    saved = Node(N1, "saved", status=STATUS_ONLINE, last_seen=900.0, firmware_version="2.0")
    registry.restore([saved, Node("aa:bb:cc:dd:ee:02", "other")])
    assert registry.get(N1) is saved and len(registry) == 2
    assert not events
    assert registry.count_by_status() == {STATUS_ONLINE: 1, STATUS_UNKNOWN: 1}


def test_iteration_is_a_snapshot(env):
    registry, _, _ = env
    for i in range(3):
        registry.get_or_register(f"aa:bb:cc:dd:ee:0{i}")
    for node in registry:
        registry.remove(node.node_id)  # must not raise "dict changed size during iteration"
    assert len(registry) == 0


def test_as_dict(env):
    registry, _, _ = env
    node = registry.get_or_register(N1)
    registry.ensure_entity(node, "t", unit="°C")
    data = node.as_dict()
    assert data["entities"][0]["key"] == "t" and data["entities"][0]["unit"] == "°C"
    assert "entities" not in node.as_dict(entities=False)
    data["attributes"]["x"] = 1
    assert node.attributes == {}  # a copy


def test_area_and_tags_are_normalised_and_fire_node_updated(env):
    registry, events, _ = env
    node = registry.get_or_register(N1)
    assert (node.area, node.tags) == (None, [])
    changed = registry.update_node(node, area="  Greenhouse   2 ", tags=["Beta", " relay-board ", "beta"])
    assert changed == {"area": "Greenhouse 2", "tags": ["beta", "relay-board"]}
    assert (node.area, node.tags) == ("Greenhouse 2", ["beta", "relay-board"])
    assert events[EVENT_NODE_UPDATED][-1] == {"node_id": N1, "changes": changed}
    changed["tags"].append("x")  # the event holds a copy, not the node's list
    assert node.tags == ["beta", "relay-board"]
    assert registry.update_node(node, area="Greenhouse 2", tags=["relay-board", "BETA"]) == {}
    assert len(events[EVENT_NODE_UPDATED]) == 1
    assert registry.update_node(node, area=None, tags=[]) == {"area": None, "tags": []}
    data = node.as_dict(entities=False)
    assert (data["area"], data["tags"]) == (None, [])


@pytest.mark.parametrize(
    "changes",
    [
        {"area": ""},
        {"area": "   "},
        {"area": "x" * 101},
        {"area": 7},
        {"area": "bell\x07"},
        {"tags": "beta"},
        {"tags": [""]},
        {"tags": ["a,b"]},
        {"tags": ["x" * 41]},
        {"tags": [3]},
        {"tags": [f"t{i}" for i in range(33)]},
    ],
)
def test_bad_area_or_tags_change_nothing(env, changes):
    registry, events, _ = env
    node = registry.get_or_register(N1)
    with pytest.raises(ValueError):
        registry.update_node(node, name="renamed", **changes)
    assert (node.name, node.area, node.tags) == (N1, None, [])
    assert events[EVENT_NODE_UPDATED] == []


def test_limits_are_inclusive(env):
    registry, _, _ = env
    node = registry.get_or_register(N1)
    registry.update_node(node, area="a" * 100, tags=[*(f"t{i}" for i in range(31)), "y" * 40])
    assert len(node.area) == 100 and len(node.tags) == 32 and "y" * 40 in node.tags
