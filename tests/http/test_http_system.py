"""/api/system and /metrics: figures read from the hub's metrics, plugins, registry; Prometheus format."""

from __future__ import annotations

import logging

from http_helpers import Api
from prometheus_client.parser import text_string_to_metric_families

from hub import Manifest
from hub.core.const import DATA_BROKER_URL, REASON_MESSAGE, STATUS_ONLINE
from hub.core.rejections import Rejections


async def test_system_reports_rates_rejects_storage_broker_and_plugins(api: Api) -> None:
    hub = api.hub
    received = hub.metrics.counter("mqtt_messages_received", "MQTT messages received")
    rejections = Rejections(hub.metrics, logging.getLogger("test"))
    batch = hub.metrics.histogram("batch_seconds", "Batch commit latency")
    hub.metrics.gauge("write_queue_depth", "Rows waiting").set(42)
    hub.metrics.gauge("mqtt_connected", "Broker connection").set(1)
    hub.data[DATA_BROKER_URL] = "mqtt://hub:s3cret@127.0.0.1:1883"
    node = hub.registry.get_or_register("aa:bb:cc:dd:ee:01")
    hub.registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE)

    stats = api.server.stats
    stats.sample()
    received.inc(600)
    rejections.reject("not_json", "devices/x/data")
    rejections.reject("not_json", "devices/y/data", "'{oops' at byte 1")
    rejections.reject("too_large", "devices/x/data")
    for seconds in (0.01, 0.02, 0.03, 0.5):
        batch.observe(seconds)
    api.clock.advance(60)
    stats.sample()

    status, body = await api.call("GET", "/api/system")
    assert status == 200
    assert body["messages"]["received_total"] == 600
    assert body["messages"]["received_per_second"] == 10.0
    assert body["messages"]["rejected_by_reason"] == {"not_json": 2, "too_large": 1}
    example = body["messages"]["rejected_examples"]["not_json"]
    assert (example["topic"], example["detail"]) == ("devices/y/data", "'{oops' at byte 1")
    series = body["series"]
    assert series["interval"] == 5 and len(series["t"]) == 1
    assert series["received_per_second"] == [10.0] and series["rejected_per_second"] == [0.05]
    assert series["rows_per_second"] == [None]  # no storage plugin: no such counter
    assert abs(series["batch_seconds"][0] - 0.14) < 1e-9  # (0.01 + 0.02 + 0.03 + 0.5) / 4
    assert body["storage"]["queue_depth"] == 42 and body["storage"]["batch_seconds"]["count"] == 4
    assert 0.01 <= body["storage"]["batch_seconds"]["p50"] <= 0.05
    assert body["broker"] == {"url": "mqtt://127.0.0.1:1883", "connected": True}  # no user name, no password
    assert body["nodes"] == {
        "total": 1,
        "by_status": {"online": 1},
        "limits": {  # the defaults of hub: limits:
            "max_nodes": 20_000,
            "new_nodes_per_minute": 1_000,
            "max_entities_per_node": 512,
            "max_attributes": 128,
            "max_attribute_bytes": 4096,
        },
    }
    assert [p["name"] for p in body["plugins"]["loaded"]] == ["http"] and body["plugins"]["failed"] == {}
    assert body["metrics"]["hub_mqtt_messages_received"]["rate"] == 10.0
    assert body["hub"]["state"] == "running"


class NeedsAbsent:
    """A plugin whose requirement is not installed: listed as failed, with the reason, never set up."""

    MANIFEST = Manifest(name="needy", requires=("absent",))


async def test_system_lists_failed_plugins_with_the_managers_reasons(make_api) -> None:
    api: Api = await make_api(plugins=[(NeedsAbsent(), "needy")])
    status, body = await api.call("GET", "/api/system")
    assert status == 200
    assert body["plugins"]["failed"] == api.hub.plugins.failed
    assert body["plugins"]["failed"]["needy"].startswith("requires absent, which is not loaded")
    assert body["plugins"]["loaded"][0]["requires"] == []


async def test_metrics_is_prometheus_text_behind_auth(api: Api) -> None:
    await api.call("GET", "/api/nodes")
    status, text = await api.call("GET", "/metrics")
    assert status == 200
    families = {family.name: family for family in text_string_to_metric_families(text)}
    responses = families["hub_http_responses"]
    assert any(s.labels == {"status": "200"} and s.value >= 1 for s in responses.samples)
    assert "hub_websocket_clients" in families
    status, _ = await api.call("GET", "/metrics", auth=False)
    assert status == 401


async def test_system_reads_the_real_storage_plugins_metrics(make_api, tmp_path) -> None:
    """The names /api/system picks are the ones storage registers: its figures are not None."""
    api: Api = await make_api(
        builtins=("hub.plugins.storage", "hub.plugins.http"),
        config={"storage": {"db_url": f"sqlite+aiosqlite:///{tmp_path / 'system.db'}"}},
    )
    node = api.hub.registry.get_or_register("aa:bb:cc:dd:ee:09")
    api.hub.registry.ensure_entity(node, "temperature")
    api.hub.registry.report_states(node, {"temperature": 1.0}, ts=api.clock())
    await api.hub.durability.wait_committed()
    status, body = await api.call("GET", "/api/system")
    assert status == 200
    storage = body["storage"]
    assert storage["loaded"] and storage["rows_total"] == 1 and storage["queue_depth"] == 0
    assert storage["batch_seconds"]["count"] >= 1
