"""A restarted hub listens to its discovered entities' topics again without seeing their configs a second time.

A hub whose MQTT session survives its restart is not sent the retained
discovery configs again (the broker keeps its subscriptions), so the entity
attributes storage restores are what the plugin rewires from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hub_esphome.plugin
from esphome_messages import EsphomeNode
from esphome_testing import Recorder, feed

from hub import (
    EVENT_AVAILABILITY_REPORTED,
    EVENT_ENTITY_REGISTERED,
    EVENT_ENTITY_REMOVED,
    EVENT_STATE_REPORTED,
    MATCH_ALL,
)


async def test_restored_entities_are_rewired(hub_factory: Any, tmp_path: Path) -> None:
    config = {"storage": {"db_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"}}

    async def start() -> Any:
        return await hub_factory(config, builtins=("hub.plugins.storage",), plugins=[(hub_esphome.plugin, "esphome")])

    node = EsphomeNode("climate-1", friendly_name="Climate 1")
    hub = await start()
    feed(hub, *node.climate_node())
    feed(hub, node.remove("button", "restart"))
    await hub.async_stop()

    hub = await start()
    events = Recorder()
    hub.bus.listen(MATCH_ALL, events)
    assert {"climate-1/status", "climate-1/sensor/temperature/state", "climate-1/switch/relay/state"} <= set(
        hub.messages.filters()
    )
    registered = hub.registry.get(node.node_id)
    assert registered is not None and "button.restart" not in registered.entities
    feed(hub, node.state("sensor", "temperature", "19.5"), (node.status_topic, b"offline", True))
    assert [e["states"] for e in events.of(EVENT_STATE_REPORTED)] == [{"sensor.temperature": 19.5}]
    assert [e["online"] for e in events.of(EVENT_AVAILABILITY_REPORTED)] == [False]
    feed(hub, *node.climate_node())  # the configs again: only the withdrawn button is registered anew
    assert [e["entity"]["key"] for e in events.of(EVENT_ENTITY_REGISTERED)] == ["button.restart"]
    assert events.of(EVENT_ENTITY_REMOVED) == []
    assert hub.metrics.value("messages_rejected", reason="discovery_collision") == 0
    assert len(registered.entities) == 6
