"""config.yaml's ``nodes:`` section: validated with file:line errors, applied after storage restored the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import STATUS_UNKNOWN
from hub.core.config import load_config
from hub.core.errors import ConfigError

PUMP = "24:6f:28:aa:00:01"
VALVE = "24:6f:28:aa:00:02"
STORAGE = ("hub.plugins.storage",)


def load(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path, {})


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.messages


def test_keys_in_any_mac_spelling_and_normalised_settings(tmp_path):
    config = load(
        tmp_path,
        "nodes:\n"
        "  24:6F:28:AA:00:01:\n"
        "    name: Pump\n"
        "    area: '  greenhouse   2 '\n"
        "    tags: [Beta, relay-board, beta]\n"
        "  246f28aa0002:\n"
        "  24-6f-28-aa-00-03: {area: null, description: by the door}\n",
    )
    assert config["nodes"] == {
        PUMP: {"name": "Pump", "area": "greenhouse 2", "tags": ["beta", "relay-board"]},
        VALVE: {},
        "24:6f:28:aa:00:03": {"area": None, "description": "by the door"},
    }
    assert load(tmp_path, "hub: {}\n")["nodes"] == {}


def test_every_problem_at_its_line(tmp_path):
    text = (
        "nodes:\n"
        "  not-a-mac:\n"  # 2
        "    name: x\n"
        "  24:00:28:11:00:01: {}\n"  # 4: YAML 1.1 reads this as a number
        "  24:6f:28:aa:00:01:\n"  # 5
        "    tags: [ok, 'a,b']\n"  # 6
        "    colour: red\n"  # 7
        "  24-6F-28-AA-00-01: {}\n"  # 8: the same node again
        "  24:6f:28:aa:00:02:\n"
        "    area: ''\n"  # 10
        "    tags: beta\n"  # 11
    )
    assert sorted(errors_of(tmp_path, text)) == sorted(
        [
            "config.yaml:2: nodes -> not-a-mac: not a MAC address: 'not-a-mac' (e.g. 24:6f:28:aa:00:01)",
            "config.yaml:4: nodes -> 18668487601: YAML read this MAC as a number: quote a MAC made only of digits "
            "('24:00:28:11:00:01')",
            "config.yaml:6: nodes -> 24:6f:28:aa:00:01 -> tags: tag 'a,b' contains a comma",
            "config.yaml:7: nodes -> 24:6f:28:aa:00:01: unknown key 'colour'",
            "config.yaml:8: nodes -> 24-6F-28-AA-00-01: the same node as '24:6f:28:aa:00:01'",
            "config.yaml:10: nodes -> 24:6f:28:aa:00:02 -> area: area must not be empty, got ''",
            "config.yaml:11: nodes -> 24:6f:28:aa:00:02 -> tags: expected a list of tags, e.g. [beta, relay-board], "
            "got 'beta'",
        ]
    )
    assert errors_of(tmp_path, "nodes: [24:6f:28:aa:00:01]\n") == [
        "config.yaml:1: nodes: expected a mapping of node MAC: {name, description, area, tags}"
    ]


async def test_configured_nodes_show_before_they_first_connect(hub_factory):
    config = {"nodes": {"24-6F-28-AA-00-01": {"name": "Pump", "area": "greenhouse 2", "tags": ["beta"]}}}
    hub = await hub_factory(config, builtins=())
    node = hub.registry.get(PUMP)
    assert node is not None and node.status == STATUS_UNKNOWN and node.last_seen is None
    assert (node.name, node.area, node.tags) == ("Pump", "greenhouse 2", ["beta"])


async def test_config_wins_for_the_keys_it_sets_after_storage_restored(hub_factory, tmp_path):
    data = {"hub": {"data_dir": str(tmp_path / "data")}}
    hub = await hub_factory(data, builtins=STORAGE)
    pump = hub.registry.get_or_register(PUMP, name="old name")
    hub.registry.update_node(pump, area="barn", tags=["alpha"], description="set through the API")
    await hub.async_stop()

    config = {**data, "nodes": {PUMP: {"name": "Pump", "tags": ["beta"]}, VALVE: {"area": "greenhouse 2"}}}
    hub = await hub_factory(config, builtins=STORAGE)
    pump, valve = hub.registry.get(PUMP), hub.registry.get(VALVE)
    assert (pump.name, pump.area, pump.tags, pump.description) == ("Pump", "barn", ["beta"], "set through the API")
    assert (valve.name, valve.area, valve.tags) == (VALVE, "greenhouse 2", [])
    await hub.async_stop()

    restarted = await hub_factory(data, builtins=STORAGE)  # the section's changes were stored like any other
    pump, valve = restarted.registry.get(PUMP), restarted.registry.get(VALVE)
    assert (pump.name, pump.tags, valve.area) == ("Pump", ["beta"], "greenhouse 2")
