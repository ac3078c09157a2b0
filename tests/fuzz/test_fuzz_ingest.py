"""Hostile MQTT input into the real ingest path: never a crash, good messages around it all stored, every refusal counted.

A real hub (storage on SQLite, the esp32_node and esphome plugins as installed)
takes each generated message through ``hub.messages.dispatch``, the one call the
MQTT transport makes per message (``tests/fuzz/test_fuzz_mqtt_broker.py`` sends the
same kinds of message through a real broker and the real client).  Around every
hostile message goes a good one; after each example storage commits and the
database must hold every good message exactly once.

"Counted" is checked per message: a message some handler took either counted a
rejection under a reason, or had an effect (an event on the bus), or is one of
the contract's documented no-ops (an empty retained payload clearing a status or
withdrawing an unknown discovery config).  Nothing may raise into the router.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import hub_esp32_node.plugin
import hub_esphome.plugin
import pytest
import sqlalchemy as sa
from fuzzing import MESSAGES, POOL_TOPICS, dumps, fuzz_settings, rejections
from hub_esphome.abbreviations import expand
from hub_esphome.contract import parse_discovery_topic
from hub_esphome.device_info import parse_device_info
from hub_esphome.discovery import parse_config
from hub_esphome.plugin import DATA_INGEST
from hypothesis import given
from hypothesis import strategies as st

from hub import MATCH_ALL, Event, Hub
from hub.plugins.storage.engine import create_engine

GOOD_MAC = "02:00:00:00:00:01"
GOOD_ESPHOME_MAC = "02:00:00:00:00:02"
GOOD_SENSOR_STATE = "goodnode/sensor/temperature/state"
EXAMPLES = 120


class FuzzedHub:
    """A started hub and what the test needs of it: a counter of good messages, the bus's events, the database."""

    def __init__(self, hub: Hub, db_url: str) -> None:
        self.hub = hub
        self.engine = create_engine(sa.engine.make_url(db_url))
        self.events: list[Event] = []
        hub.bus.listen(MATCH_ALL, self.events.append)
        self.good_seq = 0
        self.good_sent: list[int] = []
        self.good_esphome: list[float] = []
        self.unaccounted: list[tuple[str, bytes]] = []

    def send_good(self) -> None:
        """One good JSON-contract telemetry message and one good ESPHome state, each with a value never sent before."""
        self.good_seq += 1
        payload = dumps({"seq": self.good_seq, "good_seq": self.good_seq, "temperature": 21.5})
        assert self.hub.messages.dispatch(f"devices/{GOOD_MAC}/data", payload) == 1
        self.good_sent.append(self.good_seq)
        value = 1000.0 + self.good_seq
        assert self.hub.messages.dispatch(GOOD_SENSOR_STATE, str(value).encode()) >= 1
        self.good_esphome.append(value)

    def send_hostile(self, topic: str, payload: bytes, retained: bool) -> None:
        """One hostile message; remember it if it was taken but neither counted nor had an effect."""
        before_rejected, before_events = sum(rejections(self.hub).values()), len(self.events)
        handled = self.hub.messages.dispatch(topic, payload, retained)
        if not handled or payload == b"":  # not subscribed, or an empty retained payload: documented no-ops
            return
        if sum(rejections(self.hub).values()) == before_rejected and len(self.events) == before_events:
            if not _known_silent(self.hub, topic, payload):
                self.unaccounted.append((topic, payload))

    async def stored_good(self) -> tuple[list[int], list[float]]:
        """The good_seq values of the JSON node's stored rows, and the stored temperatures of the ESPHome node."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT n.node_id, t.states FROM telemetry t JOIN nodes n ON n.id = t.node_ref "
                        "WHERE n.node_id IN (:a, :b)"
                    ),
                    {"a": GOOD_MAC, "b": GOOD_ESPHOME_MAC},
                )
            ).all()
        seqs: list[int] = []
        temperatures: list[float] = []
        for node_id, states in rows:
            states = json.loads(states) if isinstance(states, str) else states
            if node_id == GOOD_MAC and "good_seq" in states:
                seqs.append(states["good_seq"])
            elif node_id == GOOD_ESPHOME_MAC and "sensor.temperature" in states:
                temperatures.append(states["sensor.temperature"])
        return seqs, temperatures


def _known_silent(hub: Hub, topic: str, payload: bytes) -> bool:
    """Inputs a contract takes without an event and without a rejection, on purpose (checked, not assumed).

    * a discovery config whose every entity is already applied with exactly this config (a retained config seen
      again at every reconnect);
    * device info that changes nothing the node has;
    * a state or availability payload on an ESPHome topic that changes nothing or that no entity reads
      (Home Assistant ignores availability payloads that are neither word, and a JSON state without the
      entity's key); the JSON contract's topics have no such case.
    """
    ingest = hub.data[DATA_INGEST]
    if topic.startswith("homeassistant/"):
        device, entities = parse_config(parse_discovery_topic(topic, 1), expand(json.loads(payload)))
        records = ingest._records
        return all(e.discovery_id in records and records[e.discovery_id].config == e for e in entities)
    if topic.startswith("esphome/discover/"):
        info = parse_device_info(topic, json.loads(payload))
        node = hub.registry.get(info.node_id)
        return node is not None and all(node.attributes.get(k) == v for k, v in info.attributes.items())
    return topic in POOL_TOPICS


@pytest.fixture
async def fuzzed(hub_factory: Any, tmp_path: Path) -> AsyncIterator[FuzzedHub]:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    empty = tmp_path / "no-esphome-files"
    empty.mkdir()
    hub = await hub_factory(
        {
            "storage": {"db_url": db_url, "flush_interval": 0.01},
            "esphome": {"firmware_dir": str(empty), "device_info": True},
            "hub": {"limits": {"max_nodes": 200, "new_nodes_per_minute": 10_000}},
        },
        builtins=("hub.plugins.storage",),
        plugins=[(hub_esp32_node.plugin, "esp32_node"), (hub_esphome.plugin, "esphome")],
    )
    assert not hub.plugins.failed, hub.plugins.failed
    device = {"ids": "020000000002", "cns": [["mac", "020000000002"]], "name": "good"}
    config = {"stat_t": GOOD_SENSOR_STATE, "name": "Temperature", "unit_of_meas": "°C", "dev": device}
    assert hub.messages.dispatch("homeassistant/sensor/goodnode/temperature/config", dumps(config), True) == 1
    fuzzed = FuzzedHub(hub, db_url)
    yield fuzzed
    await fuzzed.engine.dispose()


async def test_hostile_messages_never_crash_lose_good_ones_or_go_uncounted(fuzzed: FuzzedHub) -> None:
    hub = fuzzed.hub

    @fuzz_settings(EXAMPLES)
    @given(messages=MESSAGES, retained=st.booleans())
    def check(messages: list[tuple[str, bytes]], retained: bool) -> None:
        errors = hub.messages.handler_errors
        fuzzed.unaccounted.clear()
        for topic, payload in messages:
            fuzzed.send_good()
            fuzzed.send_hostile(topic, payload, retained)
        fuzzed.send_good()
        assert hub.messages.handler_errors == errors, "a handler raised into the router (see the log)"
        assert fuzzed.unaccounted == [], "taken, but neither counted as a rejection nor applied"

    check()
    assert hub.messages.handler_errors == 0
    await hub.durability.wait_committed()
    seqs, temperatures = await fuzzed.stored_good()
    assert sorted(seqs) == fuzzed.good_sent, "every good JSON message stored exactly once"
    assert sorted(temperatures) == fuzzed.good_esphome, "every good ESPHome state stored exactly once"
    counted = rejections(hub)
    assert counted and all(reason and value > 0 for reason, value in counted.items())
