"""ESPHome discovery benchmark: from a node's first discovery message to its entities in the hub's registry.

Real Mosquitto, the hub's mqtt transport and the esphome plugin (no storage:
this measures discovery, not writes).  A paho-mqtt client publishes exactly what
a stock ESPHome node publishes when it connects (plugins/esphome/tests/
esphome_messages.py: birth, six discovery configs with their retained states,
device info; QoS 0, retained), and the hub's bus listeners timestamp what
arrives.  Prints one JSON line:

* ``single_node_ms``: one node at a time into an idle hub (median and max of
  ``--repeat`` nodes): first discovery message published → all six entities
  registered (``entities_ms``), and → every retained state delivered on the state
  topics the hub subscribed in response (``states_ms``: discovery, subscribe and
  the broker's replay, a full round trip).
* ``fleet``: ``--nodes`` nodes published at once (a hub starting next to a
  running fleet): → all entities registered, → all retained states in.
* ``in_process_us_per_node``: the plugin's own cost, the same messages of
  ``--nodes`` nodes handed straight to ``hub.messages.dispatch`` (no broker).
* ``dashboard_ms``: what an operator sees: a hub that also serves the API (http
  built-in), a WebSocket client subscribed to ``entity_registered`` as the
  dashboard is; first discovery message published → all six entities of the
  node received over the WebSocket (``websocket``), then → ``GET /api/nodes/{id}``
  listing them (``rest``, asked right after).  Median and max of ``--repeat``.
* ``ingest``: state messages through the broker into the hub (``state_reported``
  counted), ESPHome style against the JSON contract in the same run, same
  values: ``--messages`` ESPHome states (one small topic per sensor, one value
  each: ``<node>/sensor/temperature/state`` → ``21.4``) over ``--nodes``
  discovered nodes (temperature and humidity in turn), then ``--messages`` / 2 JSON
  messages carrying the same two values each (``devices/{MAC}/data``, the esp32_node plugin).  QoS 0 from one
  paho publisher, so the publisher may be the limit: ``received`` says how many
  arrived.  Reported as messages and values per second.

    python benchmarks/esphome_discovery.py [--broker mqtt://127.0.0.1:1883] [--nodes 200] [--repeat 20]
        [--messages 60000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import hub_esp32_node.plugin
import hub_esphome.plugin
import orjson
import paho.mqtt.client as paho

from hub import DATA_HTTP_URL, EVENT_ENTITY_REGISTERED, EVENT_STATE_CHANGED, EVENT_STATE_REPORTED, Event, Hub
from hub.core.bootstrap import config_schemas, load_plugins
from hub.core.config import CORE_SCHEMA, validate_config
from hub.testing import create_user_and_token

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "esphome" / "tests"))
from esphome_messages import EsphomeNode  # the test suite's ESPHome message builder

ENTITIES = 6
RETAINED_STATES = 3  # temperature, humidity, relay (the status sensor's comes from the birth)


class Arrivals:
    """perf_counter timestamps of entity registrations and state changes, per node."""

    def __init__(self) -> None:
        self.entities: dict[str, list[float]] = {}
        self.states: dict[str, list[float]] = {}

    def on_entity(self, event: Event) -> None:
        self.entities.setdefault(event.data["node_id"], []).append(time.perf_counter())

    def on_state(self, event: Event) -> None:
        if event.data["key"] != "binary_sensor.status":
            self.states.setdefault(event.data["node_id"], []).append(time.perf_counter())

    def done(self, node_id: str) -> bool:
        return len(self.entities.get(node_id, ())) >= ENTITIES and len(self.states.get(node_id, ())) >= RETAINED_STATES


async def _hub(broker: str | None, prefix: str, *, http: bool = False, json_contract: bool = False) -> Hub:
    builtins = ("hub.plugins.mqtt",) if broker else ()
    plugins = load_plugins(builtins=builtins + (("hub.plugins.http",) if http else ()), entry_point_plugins=False)
    plugins.register(hub_esphome.plugin, "esphome")
    if json_contract:
        plugins.register(hub_esp32_node.plugin, "esp32_node")
    schemas = {"hub": CORE_SCHEMA, **config_schemas(plugins)}
    config: dict[str, object] = {
        "hub": {"data_dir": f"/tmp/hub-esphome-bench-{prefix}"},
        # No node files: this measures discovery, not the firmware folder.
        "esphome": {"discovery_prefix": prefix, "firmware_dir": f"/tmp/hub-esphome-bench-{prefix}/none"},
    }
    if http:
        config["http"] = {"port": 0}
    if broker:
        config["mqtt"] = {"broker": broker, "client_id": f"bench-{prefix}", "session_expiry": 0}
    hub = Hub(validate_config(config, schemas), plugins)
    await hub.async_start()
    return hub


async def _wait(condition, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the hub did not get everything in time")
        await asyncio.sleep(0.0005)


def _publish_all(client: paho.Client, nodes: list[EsphomeNode]) -> tuple[float, list[str]]:
    retained: list[str] = []
    started = time.perf_counter()
    for node in nodes:
        for topic, payload, retain in node.climate_node():
            client.publish(topic, payload, qos=0, retain=retain)
            retained.append(topic)
    return started, retained


async def in_process(nodes: int) -> float:
    """Microseconds per node to dispatch its connect-time messages (discovery, states, device info)."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    hub = await _hub(None, prefix)
    try:
        messages = [m for index in range(nodes) for m in EsphomeNode(f"n{index}", prefix=prefix).climate_node()]
        started = time.perf_counter()
        for topic, payload, retained in messages:
            hub.messages.dispatch(topic, payload, retained)
        elapsed = time.perf_counter() - started
        assert len(hub.registry) == nodes and hub.messages.handler_errors == 0
        return elapsed / nodes * 1e6
    finally:
        await hub.async_stop()


async def run(broker: str, nodes: int, repeat: int) -> dict[str, object]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    hub = await _hub(broker, prefix)
    arrivals = Arrivals()
    hub.bus.listen(EVENT_ENTITY_REGISTERED, arrivals.on_entity)
    hub.bus.listen(EVENT_STATE_CHANGED, arrivals.on_state)
    parts = urlsplit(broker)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{prefix}")
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    retained: list[str] = []
    try:
        entities_ms, states_ms = [], []
        for index in range(repeat):
            node = EsphomeNode(f"{prefix}-single-{index}", prefix=prefix)
            started, topics = await asyncio.to_thread(_publish_all, client, [node])
            retained += topics
            await _wait(lambda node=node: arrivals.done(node.node_id))
            entities_ms.append((max(arrivals.entities[node.node_id]) - started) * 1000)
            states_ms.append((max(arrivals.states[node.node_id]) - started) * 1000)

        fleet = [EsphomeNode(f"{prefix}-fleet-{index}", prefix=prefix) for index in range(nodes)]
        started, topics = await asyncio.to_thread(_publish_all, client, fleet)
        retained += topics
        await _wait(lambda: all(arrivals.done(node.node_id) for node in fleet))
        fleet_entities = max(max(arrivals.entities[node.node_id]) for node in fleet) - started
        fleet_states = max(max(arrivals.states[node.node_id]) for node in fleet) - started
        assert hub.messages.handler_errors == 0
        return {
            "benchmark": "esphome_discovery",
            "single_node_ms": {
                "nodes": repeat,
                "entities_median": round(statistics.median(entities_ms), 1),
                "entities_max": round(max(entities_ms), 1),
                "states_median": round(statistics.median(states_ms), 1),
                "states_max": round(max(states_ms), 1),
            },
            "fleet": {
                "nodes": nodes,
                "entities": nodes * ENTITIES,
                "topics": int(hub.metrics.value("esphome_topics")),
                "entities_s": round(fleet_entities, 2),
                "states_s": round(fleet_states, 2),
            },
            "in_process_us_per_node": round(await in_process(nodes)),
        }
    finally:
        for topic in retained:
            client.publish(topic, b"", qos=0, retain=True)
        client.disconnect()
        client.loop_stop()
        await hub.async_stop()


def _client(broker: str, name: str) -> paho.Client:
    parts = urlsplit(broker)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name)
    client.max_queued_messages_set(0)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    return client


async def dashboard_view(broker: str, repeat: int) -> dict[str, float]:
    """First discovery message → the node's entities over the dashboard's WebSocket, and in the REST API."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    hub = await _hub(broker, prefix, http=True)
    user = await create_user_and_token(hub)
    url = hub.data[DATA_HTTP_URL]
    client = _client(broker, f"bench-pub-{prefix}")
    retained: list[str] = []
    websocket_ms, rest_ms = [], []
    try:
        async with aiohttp.ClientSession(headers=user.headers) as http, http.ws_connect(f"{url}/api/websocket") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": user.token})
            assert (await ws.receive_json())["type"] == "auth_ok"
            await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "entity_registered"})
            while (await ws.receive_json()).get("type") != "result":
                pass
            for index in range(repeat):
                node = EsphomeNode(f"{prefix}-view-{index}", prefix=prefix)
                started, topics = await asyncio.to_thread(_publish_all, client, [node])
                retained += topics
                seen = 0
                while seen < ENTITIES:
                    message = orjson.loads((await ws.receive()).data)
                    if message.get("type") == "event" and message["event"]["data"]["node_id"] == node.node_id:
                        seen += 1
                websocket_ms.append((time.perf_counter() - started) * 1000)
                async with http.get(f"{url}/api/nodes/{node.node_id}") as response:
                    listed = await response.json()
                rest_ms.append((time.perf_counter() - started) * 1000)
                assert len(listed["entities"]) == ENTITIES, listed
    finally:
        for topic in retained:
            client.publish(topic, b"", qos=0, retain=True)
        client.disconnect()
        client.loop_stop()
        await hub.async_stop()
    return {
        "nodes": repeat,
        "websocket_median": round(statistics.median(websocket_ms), 1),
        "websocket_max": round(max(websocket_ms), 1),
        "rest_median": round(statistics.median(rest_ms), 1),
        "rest_max": round(max(rest_ms), 1),
    }


def _publish(client: paho.Client, messages: list[tuple[str, bytes]]) -> float:
    started = time.perf_counter()
    for topic, payload in messages:
        client.publish(topic, payload, qos=0)
    return started


async def ingest(broker: str, nodes: int, messages: int) -> dict[str, object]:
    """ESPHome state messages against JSON-contract messages carrying the same values, through the broker."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    hub = await _hub(broker, prefix, json_contract=True)
    arrivals = Arrivals()
    hub.bus.listen(EVENT_ENTITY_REGISTERED, arrivals.on_entity)
    hub.bus.listen(EVENT_STATE_CHANGED, arrivals.on_state)
    reported = [0, 0.0]

    def on_reported(_event: Event) -> None:
        reported[0] += 1
        reported[1] = time.perf_counter()

    client = _client(broker, f"bench-pub-{prefix}")
    fleet = [EsphomeNode(f"{prefix}-ingest-{index}", prefix=prefix) for index in range(nodes)]
    _started, retained = await asyncio.to_thread(_publish_all, client, fleet)
    results: dict[str, object] = {"nodes": nodes}
    try:
        await _wait(lambda: all(arrivals.done(node.node_id) for node in fleet))
        hub.bus.listen(EVENT_STATE_REPORTED, on_reported)
        esphome = [
            (f"{node.name}/sensor/{key}/state", f"{20 + (index % 100) / 10:.1f}".encode())
            for index in range(messages // 2)
            for node in (fleet[index % nodes],)
            for key in ("temperature", "humidity")
        ]
        json_messages = [
            (
                f"devices/{fleet[index % nodes].mac}/data",
                orjson.dumps({"temperature": 20 + (index % 100) / 10, "humidity": 48}),
            )
            for index in range(messages // 2)
        ]
        for name, batch, values in (("esphome", esphome, 1), ("json", json_messages, 2)):
            reported[0] = 0
            started = await asyncio.to_thread(_publish, client, batch)
            try:
                await _wait(lambda batch=batch: reported[0] >= len(batch), timeout=30)
            except TimeoutError:
                pass  # QoS 0: what the broker dropped never comes; rate over what arrived
            elapsed = reported[1] - started
            results[name] = {
                "messages": len(batch),
                "received": reported[0],
                "msgs_per_s": round(reported[0] / elapsed),
                "values_per_s": round(reported[0] * values / elapsed),
            }
        assert hub.messages.handler_errors == 0
    finally:
        for topic in retained:
            client.publish(topic, b"", qos=0, retain=True)
        client.disconnect()
        client.loop_stop()
        await hub.async_stop()
    return results


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    result = await run(args.broker, args.nodes, args.repeat)
    result["dashboard_ms"] = await dashboard_view(args.broker, args.repeat)
    result["ingest"] = await ingest(args.broker, args.nodes, args.messages)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--messages", type=int, default=60_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
