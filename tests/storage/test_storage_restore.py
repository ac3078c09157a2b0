"""What survives a hub restart: nodes, status, last_seen, entities, last states; renames and removals."""

from __future__ import annotations

from storage_helpers import NODE_A, NODE_B, T0, Store, committed, report

from hub.core.const import REASON_LWT, REASON_MESSAGE, STATUS_OFFLINE, STATUS_ONLINE
from hub.core.roles import ROLE_CLI
from hub.testing import FakeClock


async def test_restart_restores_nodes_status_entities_and_last_states(storage_hub, hub_clock: FakeClock):
    hub = await storage_hub()
    registry = hub.registry
    node = registry.get_or_register(NODE_A, name="Greenhouse", ts=T0 - 100)
    registry.update_node(node, firmware_version="2.0.1", description="north wall", attributes={"ip": "10.0.0.7"})
    registry.ensure_entity(node, "temperature", unit="°C", device_class="temperature", state_class="measurement")
    registry.ensure_entity(node, "humidity", unit="%", device_class="humidity")
    registry.ensure_entity(node, "door", platform="binary_sensor")
    registry.report_states(node, {"temperature": 20.0, "humidity": 50, "door": False}, T0, received=T0 + 0.5)
    registry.report_states(node, {"temperature": 21.5, "door": True}, T0 + 30, received=T0 + 30.25)
    registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE, ts=T0 + 0.5)
    other = registry.get_or_register(NODE_B)
    registry.set_status(other, STATUS_OFFLINE, REASON_LWT, ts=T0 + 7)
    await hub.async_stop()

    hub_clock.now = T0 + 3600
    restarted = await storage_hub()
    a = restarted.registry.get(NODE_A)
    assert a is not None
    assert (a.name, a.description, a.firmware_version, a.attributes) == (
        "Greenhouse",
        "north wall",
        "2.0.1",
        {"ip": "10.0.0.7"},
    )
    assert (a.status, a.status_reason, a.status_since) == (STATUS_ONLINE, REASON_MESSAGE, T0 + 0.5)
    assert (a.first_seen, a.last_seen) == (T0 - 100, T0 + 30.25)
    temperature = a.entities["temperature"]
    assert (temperature.unit, temperature.device_class, temperature.state_class) == ("°C", "temperature", "measurement")
    assert (temperature.state, temperature.last_reported) == (21.5, T0 + 30)
    assert a.entities["door"].platform == "binary_sensor" and a.entities["door"].state is True
    assert a.entities["humidity"].state is None  # not in the newest message
    b = restarted.registry.get(NODE_B)
    assert b is not None and (b.status, b.status_reason, b.status_since) == (STATUS_OFFLINE, REASON_LWT, T0 + 7)


async def test_cli_role_restores_too(storage_hub):
    hub = await storage_hub()
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    await hub.async_stop()
    cli = await storage_hub(role=ROLE_CLI)
    node = cli.registry.get(NODE_A)
    assert node is not None and node.entities["temperature"].state == 20.0


async def test_rename_and_removal_are_persisted(storage_hub, store: Store):
    hub = await storage_hub()
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    report(hub, NODE_B, {"temperature": 20.0}, T0)
    hub.registry.set_status(hub.registry.get(NODE_B), STATUS_ONLINE, REASON_MESSAGE)
    await committed(hub)
    hub.registry.update_node(hub.registry.get(NODE_A), name="Kitchen")
    hub.registry.remove(NODE_B)
    await hub.async_stop()

    assert await store.all("SELECT node_id, name FROM nodes") == [(NODE_A, "Kitchen")]
    for table in ("telemetry", "entities", "status_history"):
        orphans = await store.scalar(f"SELECT count(*) FROM {table} WHERE node_ref NOT IN (SELECT id FROM nodes)")
        assert orphans == 0, table
    restarted = await storage_hub()
    assert [node.node_id for node in restarted.registry] == [NODE_A]
    assert restarted.registry.get(NODE_A).name == "Kitchen"


async def test_node_removed_and_registered_again_in_one_batch(storage_hub, store: Store):
    hub = await storage_hub(flush_interval=5)
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    await hub.async_stop()  # committed: the node has an id now
    hub = await storage_hub(flush_interval=5)
    report(hub, NODE_A, {"temperature": 21.0}, T0 + 1)
    hub.registry.remove(NODE_A)
    report(hub, NODE_A, {"humidity": 40}, T0 + 2)  # same MAC comes back as a new node
    await hub.async_stop()
    rows = await store.all("SELECT n.node_id, t.ts FROM telemetry t JOIN nodes n ON n.id = t.node_ref")
    assert rows == [(NODE_A, T0 + 2)]
    assert await store.all("SELECT key FROM entities") == [("humidity",)]


async def test_last_seen_written_at_most_every_few_seconds_but_exactly_at_shutdown(storage_hub, store: Store):
    hub = await storage_hub(flush_interval=0.01)
    node = hub.registry.get_or_register(NODE_A)
    hub.registry.ensure_entity(node, "temperature")
    hub.registry.report_states(node, {"temperature": 1.0}, T0, received=T0)
    await committed(hub)
    hub.registry.report_states(node, {"temperature": 2.0}, T0 + 1, received=T0 + 1)
    await committed(hub)
    assert await store.scalar("SELECT last_seen FROM nodes") == T0  # within the 5 s resolution
    hub.registry.report_states(node, {"temperature": 3.0}, T0 + 6, received=T0 + 6)
    await committed(hub)
    assert await store.scalar("SELECT last_seen FROM nodes") == T0 + 6
    # One batch: the first reading is not due, a later one is (the writer checks each as it arrives).
    for seen in (T0 + 7, T0 + 12, T0 + 13):
        hub.registry.report_states(node, {"temperature": 4.0}, seen, received=seen)
    await committed(hub)
    assert await store.scalar("SELECT last_seen FROM nodes") == T0 + 13  # the latest, read when the plan is built
    hub.registry.report_states(node, {"temperature": 5.0}, T0 + 14, received=T0 + 14)
    await hub.async_stop()
    assert await store.scalar("SELECT last_seen FROM nodes") == T0 + 14


async def test_entity_removal_is_persisted_and_readings_stay(storage_hub, store: Store):
    hub = await storage_hub()
    report(hub, NODE_A, {"temperature": 20.0, "humidity": 40}, T0)
    await committed(hub)
    node = hub.registry.get(NODE_A)
    assert hub.registry.remove_entity(node, "humidity")
    assert not hub.registry.remove_entity(node, "humidity")
    await hub.async_stop()

    assert await store.all("SELECT key FROM entities") == [("temperature",)]
    assert await store.scalar("SELECT count(*) FROM telemetry") == 1
    restarted = await storage_hub()
    assert set(restarted.registry.get(NODE_A).entities) == {"temperature"}


async def test_entity_removed_and_registered_again_in_one_batch(storage_hub, store: Store):
    hub = await storage_hub(flush_interval=5)
    report(hub, NODE_A, {"temperature": 20.0}, T0)
    await hub.async_stop()  # committed: the entity row exists
    hub = await storage_hub(flush_interval=5)
    registry = hub.registry
    node = registry.get(NODE_A)
    registry.remove_entity(node, "temperature")
    registry.ensure_entity(node, "temperature", unit="K")  # the same key comes back, changed
    registry.ensure_entity(node, "humidity")
    registry.remove_entity(node, "humidity")  # registered and removed within the batch: never written
    await hub.async_stop()
    assert await store.all("SELECT key, unit FROM entities") == [("temperature", "K")]


async def test_area_and_tags_survive_a_restart(storage_hub, store: Store):
    hub = await storage_hub()
    registry = hub.registry
    a = registry.get_or_register(NODE_A, ts=T0)
    registry.update_node(a, area="Greenhouse 2", tags=["beta", "relay-board"])
    registry.get_or_register(NODE_B, ts=T0)  # never given any: no area, no tags
    await hub.async_stop()

    restarted = await storage_hub()
    a, b = restarted.registry.get(NODE_A), restarted.registry.get(NODE_B)
    assert (a.area, a.tags) == ("Greenhouse 2", ["beta", "relay-board"])
    assert (b.area, b.tags) == (None, [])
    restarted.registry.update_node(a, area=None, tags=["canary"])
    await restarted.async_stop()
    assert await store.all("SELECT node_id, area FROM nodes ORDER BY node_id") == [(NODE_A, None), (NODE_B, None)]

    again = await storage_hub()
    a = again.registry.get(NODE_A)
    assert (a.area, a.tags) == (None, ["canary"])


async def test_tags_written_by_hand_are_normalised_or_dropped_at_restore(storage_hub, store: Store):
    hub = await storage_hub()
    hub.registry.get_or_register(NODE_A, ts=T0)
    hub.registry.get_or_register(NODE_B, ts=T0)
    await hub.async_stop()
    await store.execute("UPDATE nodes SET tags = :tags WHERE node_id = :node", tags='["Beta", 7, "beta"]', node=NODE_A)
    await store.execute("UPDATE nodes SET tags = :tags WHERE node_id = :node", tags='{"not": "a list"}', node=NODE_B)
    restarted = await storage_hub()
    assert restarted.registry.get(NODE_A).tags == ["beta"]
    assert restarted.registry.get(NODE_B).tags == []


async def test_last_seen_in_postgresql_only_moves_forward(storage_hub, store: Store):
    """Several processes write last_seen (workers on RabbitMQ): an older value never replaces a newer one."""
    if store.dialect != "postgresql":
        return  # SQLite has one writing process by construction
    hub = await storage_hub(flush_interval=0.01)
    registry = hub.registry
    nodes = [registry.get_or_register(node_id) for node_id in (NODE_A, NODE_B)]
    for node in nodes:
        registry.ensure_entity(node, "temperature")
        registry.report_states(node, {"temperature": 1.0}, T0, received=T0)
    await committed(hub)
    await store.execute("UPDATE nodes SET last_seen = :t WHERE node_id = :n", t=T0 + 100, n=NODE_A)  # another worker
    for node in nodes:
        registry.report_states(node, {"temperature": 2.0}, T0 + 10, received=T0 + 10)
    await committed(hub)
    rows = await store.all("SELECT node_id, last_seen FROM nodes ORDER BY node_id")
    assert dict(rows) == {NODE_A: T0 + 100, NODE_B: T0 + 10}


async def test_node_and_entity_text_and_times_survive_exactly(storage_hub, hub_clock: FakeClock):
    """Quotes, backslashes, JSON-looking text, non-ASCII and times with no short decimal form come back as written."""
    awkward = 'say "hi" \\ {"a": [1]} ünïcødé 🌱'
    hub = await storage_hub()
    registry = hub.registry
    node = registry.get_or_register(NODE_A, name=awkward, ts=T0 + 0.1)
    registry.update_node(node, description=awkward, firmware_version="1.0\\beta", area=None, attributes={"k": awkward})
    registry.ensure_entity(node, "temperature", name=awkward, unit='°"C', attributes={"x": None})
    registry.report_states(node, {"temperature": 1.5}, T0 + 1 / 3, received=T0 + 1 / 3)
    registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE, ts=T0 + 2 / 3)
    await hub.async_stop()

    restarted = await storage_hub()
    a = restarted.registry.get(NODE_A)
    assert a is not None
    assert (a.name, a.description, a.firmware_version, a.area, a.attributes) == (
        awkward,
        awkward,
        "1.0\\beta",
        None,
        {"k": awkward},
    )
    assert (a.first_seen, a.last_seen, a.status_since) == (T0 + 0.1, T0 + 1 / 3, T0 + 2 / 3)
    entity = a.entities["temperature"]
    assert (entity.name, entity.unit, entity.attributes) == (awkward, '°"C', {"x": None})
