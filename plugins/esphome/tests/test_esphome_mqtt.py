"""End to end over the real Mosquitto: paho-mqtt plays a stock ESPHome node (and a Tasmota plug), into a hub with
storage and presence.

The node is a paho client with ESPHome's Last Will (``<node>/status`` ``offline``,
retained), publishing exactly what ESPHome publishes when it connects (see
esphome_messages.py) at QoS 0 with retain, as ESPHome does.  Its power loss is a
dropped socket, so the broker publishes the Will.  Each test uses its own
discovery prefix and node name, and clears every retained message it left.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import hub_esphome.plugin
import orjson
import pytest
import sqlalchemy as sa
from esphome_messages import EsphomeNode
from esphome_testing import Device, Recorder, retained_at_broker
from sqlalchemy.ext.asyncio import create_async_engine

from hub import EVENT_STATE_REPORTED, MATCH_ALL, REASON_LWT, STATUS_OFFLINE, STATUS_ONLINE, Hub
from hub.testing import wait_until

pytestmark = pytest.mark.mosquitto

RESTORED_KEYS = ("sensor.temperature", "sensor.humidity", "switch.relay", "binary_sensor.status")


@pytest.fixture
def devices(hub_mqtt_url: str) -> Iterator[Callable[..., Device]]:
    made: list[Device] = []

    def make(will: tuple[str, bytes] | None = None) -> Device:
        device = Device(hub_mqtt_url, will)
        made.append(device)
        return device

    yield make
    for device in made:
        device.clean_up()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("hub_postgres_url")


@pytest.fixture
def prefix() -> str:
    return f"hubtest-{uuid.uuid4().hex[:10]}"


MqttHub = tuple[Hub, Recorder, list[str]]
"""The hub, its events, and the topics it published."""


@pytest.fixture
async def start_hub(db_url: str, hub_mqtt_url: str, hub_factory: Any, prefix: str) -> AsyncIterator[Any]:
    """``await start_hub()`` → :data:`MqttHub`.  ``db_url`` comes first: torn down after the hub."""
    started: list[Hub] = []

    async def start() -> MqttHub:
        hub = await hub_factory(
            {
                "mqtt": {
                    "broker": hub_mqtt_url,
                    "client_id": f"hub-esphome-{uuid.uuid4().hex[:12]}",
                    "session_expiry": 0,
                },
                "storage": {"db_url": db_url, "flush_interval": 0.05},
                "esphome": {"discovery_prefix": prefix},
            },
            builtins=("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence"),
            plugins=[(hub_esphome.plugin, "esphome")],
        )
        assert {"mqtt", "storage", "presence", "esphome"} <= set(hub.plugins.info), hub.plugins.failed
        started.append(hub)
        recorder = Recorder()
        hub.bus.listen(MATCH_ALL, recorder)
        published: list[str] = []
        publish = hub.messages.publish

        async def recording(topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False) -> None:
            published.append(topic)
            await publish(topic, payload, qos=qos, retain=retain)

        hub.messages.publish = recording  # type: ignore[method-assign]
        return hub, recorder, published

    yield start
    for hub in started:
        assert hub.messages.handler_errors == 0


@pytest.fixture
async def mqtt_hub(start_hub: Any) -> MqttHub:
    """A hub started before the test's devices connect."""
    return await start_hub()


async def entity_keys(db_url: str, node_id: str) -> set[str]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT e.key FROM entities e JOIN nodes n ON n.id = e.node_ref WHERE n.node_id = :n"),
                {"n": node_id},
            )
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def test_a_stock_esphome_node_over_mqtt(
    start_hub: Any, devices: Callable[..., Device], prefix: str, db_url: str, hub_mqtt_url: str
) -> None:
    """The node connected while the hub was down: the hub starts and finds its configs and states retained.

    Only then is every state retained at subscribe time whatever the timing (a node that publishes while the hub
    listens races its states against the hub's subscriptions: a state that reaches the broker after the hub
    subscribed its topic is live, and fresh).  The probe makes sure the broker holds them all before the hub starts.
    """
    node = EsphomeNode(f"climate-{uuid.uuid4().hex[:6]}", friendly_name="Climate", prefix=prefix)
    device = devices(will=(node.status_topic, b"offline"))
    await device.send(*node.climate_node())
    await retained_at_broker(hub_mqtt_url, node.climate_node())
    hub, events, published = await start_hub()

    registered = await wait_until(lambda: hub.registry.get(node.node_id))
    await wait_until(lambda: len(registered.entities) == 6)
    temperature = registered.entities["sensor.temperature"]
    # Every retained state in (the status sensor's too, whether its config or the birth came first).
    await wait_until(
        lambda: (
            (
                temperature.state,
                registered.entities["sensor.humidity"].state,
                registered.entities["switch.relay"].state,
                registered.entities["binary_sensor.status"].state,
            )
            == (21.4, 48.0, False, True)
        )
    )
    assert all(registered.entities[key].attributes["restored"] is True for key in RESTORED_KEYS)
    assert (temperature.unit, temperature.device_class, temperature.state_class) == ("°C", "temperature", "measurement")
    assert registered.entities["sensor.humidity"].unit == "%"
    await wait_until(lambda: registered.attributes.get("esphome_version") == "2026.10.0")
    assert registered.name == "Climate" and registered.attributes["ip"] == "127.0.0.1"
    await wait_until(lambda: registered.status == STATUS_ONLINE)  # the retained birth

    # Fresh readings, as ESPHome publishes them (retained, so the hub sees them live: retain flag off).
    await device.send(node.state("sensor", "temperature", "22.5", retained=True))
    await wait_until(lambda: "restored" not in temperature.attributes)
    await device.send(node.state("sensor", "humidity", "nan", retained=True))
    await wait_until(lambda: "restored" not in registered.entities["sensor.humidity"].attributes)
    await device.send(node.state("switch", "relay", "ON", retained=True))
    await wait_until(lambda: registered.entities["switch.relay"].state is True)
    assert temperature.state == 22.5 and "restored" not in temperature.attributes
    reported = [e["states"] for e in events.of(EVENT_STATE_REPORTED) if e["node_id"] == node.node_id]
    assert reported == [{"sensor.temperature": 22.5}, {"sensor.humidity": None}, {"switch.relay": True}]
    await hub.durability.wait_committed()
    now = hub.clock()
    history = await hub.services.call(
        "storage", "history", {"node_id": node.node_id, "key": "sensor.temperature", "start": now - 60, "end": now + 1}
    )
    assert [(b["min"], b["count"]) for b in history["buckets"]] == [(22.5, 1)]  # the restored 21.4 is not a reading

    # Each state and availability topic subscribed once: status, temperature, humidity, relay, update.
    assert hub.metrics.value("esphome_topic_subscriptions") == 5

    # An empty retained config removes the entity, from the registry and from storage.
    await device.send(node.remove("switch", "relay"))
    await wait_until(lambda: "switch.relay" not in registered.entities)
    await hub.durability.wait_committed()
    assert await entity_keys(db_url, node.node_id) == {
        "sensor.temperature",
        "sensor.humidity",
        "binary_sensor.status",
        "button.restart",
        "update.firmware",
    }

    # Power loss: the broker publishes the Will, presence marks the node offline at once.
    device.power_loss()
    await wait_until(lambda: registered.status == STATUS_OFFLINE)
    assert registered.status_reason == REASON_LWT
    assert registered.entities["binary_sensor.status"].state is False
    assert published == []  # the plugin only listens: never homeassistant/status, nothing at all


async def test_a_tasmota_plug_next_to_the_esphome_node(
    mqtt_hub: MqttHub, devices: Callable[..., Device], prefix: str
) -> None:
    hub, _events, _published = mqtt_hub
    name = f"tasmota_{uuid.uuid4().hex[:6].upper()}"
    mac = "A4CF12" + uuid.uuid4().hex[:6].upper()
    lwt = f"tele/{name}/LWT"
    config = {
        "name": "Plug Energy Power",
        "stat_t": f"tele/{name}/SENSOR",
        "avty_t": lwt,
        "pl_avail": "Online",
        "pl_not_avail": "Offline",
        "uniq_id": f"{mac}_ENERGY_Power",
        "dev": {"ids": [mac], "name": "Plug", "mdl": "Sonoff S31", "sw": "14.3.0", "mf": "Tasmota"},
        "unit_of_meas": "W",
        "dev_cla": "power",
        "stat_cla": "measurement",
        "frc_upd": True,
        "val_tpl": "{{value_json['ENERGY']['Power']}}",
    }
    plug = devices(will=(lwt, b"Offline"))
    await plug.send(
        (lwt, b"Online", True),
        (f"{prefix}/sensor/{mac}_ENERGY_Power/config", orjson.dumps(config), True),
    )
    node_id = ":".join(mac[i : i + 2] for i in range(0, 12, 2)).lower()
    registered = await wait_until(lambda: hub.registry.get(node_id))
    power = await wait_until(lambda: registered.entities.get(f"sensor.{mac}_ENERGY_Power"))
    assert (power.unit, power.device_class, registered.firmware_version) == ("W", "power", "14.3.0")
    await wait_until(lambda: registered.status == STATUS_ONLINE)  # the retained LWT topic says Online
    # The tele message is not retained, so the hub must listen first: the retained "Online" proved it does.
    await plug.send((f"tele/{name}/SENSOR", b'{"Time":"2026-01-01T00:00:00","ENERGY":{"Power":41.5}}', False))
    await wait_until(lambda: power.state == 41.5)
    plug.power_loss()
    await wait_until(lambda: registered.status == STATUS_OFFLINE)
