"""Hostile MQTT input through a real broker and the hub's real MQTT client, interleaved with good telemetry.

The in-process fuzz (test_fuzz_ingest.py) runs many examples through the
router; this one sends fewer through everything a device's message crosses: a
private Mosquitto, the transport (gmqtt, acknowledge-after-commit), the
plugins and storage.  Every QoS 1 message must be acknowledged (the hostile
ones too: a poison message is never redelivered forever), the hub must stay
connected, every good message must be stored once, and the hostile ones must
show up as counted rejections.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import hub_esp32_node.plugin
import hub_esphome.plugin
import paho.mqtt.client as paho
import sqlalchemy as sa
from fuzzing import MESSAGES, dumps, fuzz_settings, rejections
from hypothesis import given

from hub import validate_filter
from hub.core.messages import topic_matches
from hub.plugins.storage.engine import create_engine
from hub.testing import PrivateMosquitto, unavailable, wait_until
from hub.testing.mosquitto import mosquitto_binary

GOOD_MAC = "02:00:00:00:00:03"
EXAMPLES = 20
STATIC_FILTERS = [
    validate_filter(f)
    for f in ("devices/+/data", "devices/+/status", "homeassistant/+/+/config", "homeassistant/+/+/+/config")
]
"""The filters the hub subscribes from the start: every hostile message on one of these reaches it."""


def publishable(topic: str) -> bool:
    """What a broker takes at all (MQTT 3.1.1 §1.5.3, §4.7; Mosquitto disconnects a client that breaks it).

    No empty name, no wildcards, no control characters (U+0000–U+001F, U+007F–U+009F) and no non-characters;
    the in-process fuzz covers the rest (a broker might let it through).
    """
    return (
        bool(topic)
        and len(topic.encode()) < 65_535
        and not any(
            c in "+#"
            or ord(c) < 0x20
            or 0x7F <= ord(c) <= 0x9F
            or 0xFDD0 <= ord(c) <= 0xFDEF
            or (ord(c) & 0xFFFE) == 0xFFFE
            for c in topic
        )
    )


async def test_hostile_messages_through_mosquitto_are_acknowledged_counted_and_good_ones_stored(
    hub_factory: Any, tmp_path: Path
) -> None:
    if mosquitto_binary() is None:
        unavailable("mosquitto is not installed")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    empty = tmp_path / "no-esphome-files"
    empty.mkdir()
    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        hub = await hub_factory(
            {
                "mqtt": {"broker": broker.url, "client_id": f"fuzz-{uuid.uuid4().hex[:8]}", "session_expiry": 60},
                "storage": {"db_url": db_url, "flush_interval": 0.02},
                "esphome": {"firmware_dir": str(empty)},
                "hub": {"limits": {"max_nodes": 200, "new_nodes_per_minute": 10_000}},
            },
            builtins=("hub.plugins.storage", "hub.plugins.mqtt"),
            plugins=[(hub_esp32_node.plugin, "esp32_node"), (hub_esphome.plugin, "esphome")],
        )
        assert not hub.plugins.failed, hub.plugins.failed
        loop = asyncio.get_running_loop()
        device = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="fuzz-device", protocol=paho.MQTTv311)
        device.connect("127.0.0.1", broker.port)
        device.loop_start()
        sent_good: list[int] = []
        sent_hostile = 0
        sent_routed: list[str] = []

        def good_seq() -> Any:
            node = hub.registry.get(GOOD_MAC)
            entity = node.entities.get("good_seq") if node else None
            return entity.state if entity else None

        def publish(topic: str, payload: bytes) -> None:
            info = device.publish(topic, payload, qos=1)
            info.wait_for_publish(10)  # the broker's PUBACK: Mosquitto took it
            assert info.is_published(), f"no PUBACK for {topic!r}"

        def send_good() -> None:
            seq = len(sent_good) + 1
            publish(f"devices/{GOOD_MAC}/data", dumps({"seq": seq, "good_seq": seq, "temperature": 20.0}))
            sent_good.append(seq)

        @fuzz_settings(EXAMPLES)
        @given(messages=MESSAGES)
        def check(messages: list[tuple[str, bytes]]) -> None:
            nonlocal sent_hostile
            for topic, payload in messages:
                if not publishable(topic):
                    continue
                send_good()
                publish(topic, payload)
                sent_hostile += 1
                if any(topic_matches(levels, topic.split("/")) for levels in STATIC_FILTERS):
                    sent_routed.append(topic)
            send_good()
            last = sent_good[-1]
            wait = wait_until(lambda: good_seq() == last, timeout=20, message=f"good message {last} to arrive")
            asyncio.run_coroutine_threadsafe(wait, loop).result()

        try:
            await asyncio.to_thread(check)
        finally:
            device.disconnect()
            device.loop_stop()

        await hub.durability.wait_committed()
        assert hub.messages.handler_errors == 0
        mqtt = hub.metrics
        assert mqtt.value("mqtt_connections") == 1, "the hub never lost its broker connection"
        # Every message the hub took was acknowledged: nothing still in flight, nothing withheld.
        expected = len(sent_good) + len(sent_routed)
        await wait_until(lambda: mqtt.value("mqtt_messages_received") >= expected, timeout=20, message="the PUBACKs")
        assert mqtt.value("mqtt_acks_withheld") == 0

        engine = create_engine(sa.engine.make_url(db_url))
        try:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.text(
                            "SELECT t.states FROM telemetry t JOIN nodes n ON n.id = t.node_ref WHERE n.node_id = :n"
                        ),
                        {"n": GOOD_MAC},
                    )
                ).all()
        finally:
            await engine.dispose()
        stored = sorted(s["good_seq"] for (raw,) in rows if "good_seq" in (s := _states(raw)))
        assert stored == sent_good, "every good message stored exactly once"
        assert len(sent_routed) >= 20 and sum(rejections(hub).values()) > len(sent_routed) / 2


def _states(raw: Any) -> dict[str, Any]:
    return json.loads(raw) if isinstance(raw, str) else raw
