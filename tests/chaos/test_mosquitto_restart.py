"""A Mosquitto restart under load: nothing lost, the hub back within seconds, a command executed once.

A private Mosquitto (persistence in the test's folder, tuned like ``deploy/mosquitto.conf``; never the
shared broker on 1883) carries QoS 1 load from a paho publisher to a hub (in this process, SQLite).  A
simulated node with a persistent session executes the commands it receives and answers them.  The broker
is stopped (SIGTERM: it saves its queues) right after a burst, a command is submitted while it is away,
and the broker is started again on the same port.  Then:

* every message the broker accepted before the restart, and a burst after it, is stored exactly once;
* the hub reconnects within ``RECONNECT_WITHIN`` seconds (measured and printed);
* the node received the command exactly once and it succeeded: no duplicate execution.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest
from chaos_harness import Publisher, Store, report

from hub.testing import wait_until
from hub.testing.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.slow

NODES = 10
BURST = 3000
RECONNECT_WITHIN = 10.0
NODE_MAC = "24:0A:C4:EE:00:01"


class SimulatedNode:
    """A node on a persistent session: executes each command it receives (counted by id) and answers ``ok``."""

    def __init__(self, port: int) -> None:
        self.received: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"node-{uuid.uuid4().hex[:8]}", clean_session=False
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(f"devices/{NODE_MAC}/commands", qos=1)

    def _on_message(self, client, userdata, message) -> None:
        command = orjson.loads(message.payload)
        with self._lock:
            self.received[command["message_id"]] += 1
        answer = {"message_id": command["message_id"], "status": "ok"}
        client.publish(f"devices/{NODE_MAC}/ack", orjson.dumps(answer), qos=1)

    def hello(self) -> None:
        self.client.publish(f"devices/{NODE_MAC}/data", orjson.dumps({"uptime": 1}), qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def test_broker_restart_under_load(tmp_path: Path, hub_factory) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    broker = PrivateMosquitto(tmp_path / "mosquitto")
    await broker.async_start()
    store = Store(db_url)
    node = publisher = None
    try:
        hub = await hub_factory(
            {
                "mqtt": {"broker": broker.url, "client_id": f"chaos-{uuid.uuid4().hex[:8]}"},
                "storage": {"db_url": db_url},
            },
            builtins=("hub.plugins.storage", "hub.plugins.mqtt"),
            entry_points=True,
        )
        connected = lambda: hub.metrics.value("mqtt_connected") == 1  # noqa: E731
        node = SimulatedNode(broker.port)
        node_id = NODE_MAC.lower()
        await wait_until(lambda: (node.hello(), hub.registry.get(node_id))[1], message="the node to register")
        publisher = Publisher(broker.port, NODES, seed=11, inflight=100)

        await asyncio.to_thread(publisher.publish, BURST)  # the load, then the broker goes away mid-stream
        await asyncio.to_thread(publisher.wait_all_acked)
        first = set(publisher.acked)
        assert len(first) == BURST
        await broker.async_stop()
        await wait_until(lambda: not connected(), message="the hub to notice the broker is gone")
        command = hub.commands.submit(node_id, "REBOOT", sender="chaos")
        publisher.close()

        back = time.monotonic()
        await broker.async_start()
        await wait_until(connected, timeout=RECONNECT_WITHIN, message="the hub to reconnect")
        reconnect = time.monotonic() - back  # from starting the broker (it listens within ~0.1 s)
        publisher = Publisher(broker.port, NODES, seed=11, inflight=100)
        publisher.published = BURST  # numbers go on where the first connection stopped
        await asyncio.to_thread(publisher.publish, BURST)
        await asyncio.to_thread(publisher.wait_all_acked)
        done = await hub.commands.wait_done(command.id, timeout=30)
        accepted = first | set(publisher.acked)
        assert len(accepted) == 2 * BURST
        await wait_until(
            lambda: _stored_all(store, accepted), timeout=60, message="every accepted message to be stored"
        )
        stored = await store.messages()
    finally:
        if publisher is not None:
            publisher.close()
        if node is not None:
            node.close()
        await store.close()
        await broker.async_stop()

    duplicates = len(stored) - len(set(stored))
    report(
        "Mosquitto restart",
        sent=2 * BURST,
        stored=len(set(stored)),
        duplicated=duplicates,
        reconnect_s=reconnect,
        command_received=node.received[command.id],
        command_status=done.status,
        max_loop_stall_s=hub.loop_lag.max_lag,
        max_loop_busy_s=hub.loop_lag.max_busy,
    )
    assert not duplicates
    assert done.status == "succeeded", done
    assert node.received[command.id] == 1, f"the node received the command {node.received[command.id]} times"


async def _stored_all(store: Store, accepted: set[tuple[str, int]]) -> bool:
    return accepted <= set(await store.messages())
