"""After a lost RabbitMQ connection a process reloads its registry from PostgreSQL (what the fan-out could not carry).

An API instance (``--role api``) on the real RabbitMQ and a private PostgreSQL database. Another process (a hub
with storage only, so nothing it does goes through the fan-out) registers a node with readings and turns a node
the API instance knows offline: the API instance cannot know. RabbitMQ then closes the API instance's connection
(``rabbitmqctl close_connection``, as an operator or a broker going down does: its exclusive fan-out queue is
deleted; the shared broker itself is never restarted), the API instance reconnects on its own, and its registry
and its listeners must show the database's fleet.
"""

from __future__ import annotations

import asyncio
import uuid

import hub_esp32_node.plugin
import pytest
from rabbit_helpers import (
    DEFAULT_RABBITMQ_URL,
    close_connections_named,
    rabbit_config,
    rabbitmq_url,
    rabbitmqctl_usable,
    random_macs,
)

from hub import EVENT_NODE_REGISTERED, EVENT_NODE_STATUS_CHANGED, ROLE_API, STATUS_OFFLINE, STATUS_ONLINE
from hub.plugins.rabbitmq import DATA_RABBITMQ
from hub.testing import unavailable, wait_until

pytestmark = pytest.mark.rabbitmq

BUILTINS = ("hub.plugins.storage", "hub.plugins.rabbitmq")


async def test_a_reconnected_api_instance_reloads_what_it_missed_from_the_database(
    amqp_url, prefix, hub_postgres_url, hub_factory
):
    if rabbitmq_url() != DEFAULT_RABBITMQ_URL:
        unavailable("rabbitmqctl closes connections on the machine's own RabbitMQ, not on HUB_TEST_RABBITMQ_URL's")
    if not rabbitmqctl_usable():
        unavailable("rabbitmqctl cannot reach the machine's RabbitMQ (run as root or with its Erlang cookie)")
    known_mac, new_mac = random_macs(2)
    name = f"resync-{uuid.uuid4().hex[:8]}"
    known_id, new_id = known_mac.lower(), new_mac.lower()
    storage = {"db_url": hub_postgres_url, "flush_interval": 0.05}
    # The other process: storage only, no fan-out. It registers the node the API instance knows.
    other = await hub_factory({"storage": storage}, builtins=("hub.plugins.storage",))
    node = other.registry.get_or_register(known_id, name="known")
    other.registry.set_status(node, STATUS_ONLINE, "message", ts=1_000.0)
    await other.async_stop()  # committed

    api = await hub_factory(
        {
            "hub": {"name": name},
            "storage": storage,
            "rabbitmq": rabbit_config(amqp_url, prefix, [known_mac], events={"interval": 0.05}),
        },
        builtins=BUILTINS,
        plugins=[(hub_esp32_node.plugin, "esp32_node")],
        role=ROLE_API,
    )
    metrics = api.metrics.registry
    await wait_until(lambda: metrics.get_sample_value("hub_rabbitmq_resyncs_total") == 1)  # at the first connection
    assert api.registry.get(known_id).status == STATUS_ONLINE
    seen: list[tuple[str, dict]] = []
    for event_type in (EVENT_NODE_REGISTERED, EVENT_NODE_STATUS_CHANGED):
        api.bus.listen(event_type, lambda event: seen.append((event.event_type, dict(event.data))))

    # Meanwhile, elsewhere: a new node with a reading, and the known node offline (later than the API knows).
    other = await hub_factory({"storage": storage}, builtins=("hub.plugins.storage",))
    other.registry.set_status(other.registry.get(known_id), STATUS_OFFLINE, "timeout", ts=2_000.0)
    fresh = other.registry.get_or_register(new_id, name="new")
    other.registry.ensure_entity(fresh, "temperature", name="Temperature", unit="°C")
    other.registry.report_states(fresh, {"temperature": 21.5}, ts=1_500.0)
    await other.async_stop()
    await asyncio.sleep(0.3)  # several fan-out intervals: nothing reaches the API instance this way
    assert api.registry.get(new_id) is None and api.registry.get(known_id).status == STATUS_ONLINE

    # RabbitMQ closes the API instance's connection; it reconnects on its own and reloads.
    transport = api.data[DATA_RABBITMQ]
    first = transport._connection
    assert await close_connections_named(f"hub {name} ") == 1
    await wait_until(lambda: transport.connected and transport._connection is not first, timeout=30)
    await wait_until(lambda: metrics.get_sample_value("hub_rabbitmq_resyncs_total") == 2, timeout=30)

    reloaded = api.registry.get(new_id)
    assert reloaded is not None and reloaded.name == "new"
    assert reloaded.entities["temperature"].state == 21.5
    assert reloaded.entities["temperature"].last_reported == 1_500.0
    known = api.registry.get(known_id)
    assert (known.status, known.status_reason, known.status_since) == (STATUS_OFFLINE, "timeout", 2_000.0)
    assert metrics.get_sample_value("hub_rabbitmq_resync_changes_total") >= 2
    # Its listeners (WebSocket clients) saw the changes, marked as coming from the database, not from this process.
    assert (EVENT_NODE_REGISTERED, new_id, "resync") in [(t, d["node_id"], d.get("origin")) for t, d in seen]
    offline = [d for t, d in seen if t == EVENT_NODE_STATUS_CHANGED and d["node_id"] == known_id]
    assert [(d["new"], d["origin"]) for d in offline] == [(STATUS_OFFLINE, "resync")]
