"""The embedded broker (amqtt) on a free loopback port, end to end with paho-mqtt and the hub's mqtt plugin."""

from __future__ import annotations

import logging
import socket

import pytest
from mqtt_helpers import EMBEDDED, PahoPeer, collect, unique

from hub.core.const import DATA_BROKER_URL
from hub.core.errors import ConfigError, StartupError
from hub.core.hub import HubState
from hub.core.roles import ROLE_CLI
from hub.plugins.broker import DATA_BROKER
from hub.plugins.mqtt import DATA_MQTT
from hub.testing import free_port, wait_until


async def embedded_hub(hub_factory, broker: dict, filters: list[str] = (), **extra):
    hub = await hub_factory(
        {"broker": broker, "mqtt": {"reconnect": {"min_delay": 0.05}}, **extra}, builtins=EMBEDDED, start=False
    )
    sinks = [collect(hub, topic_filter) for topic_filter in filters]
    await hub.async_start()
    return hub, sinks


async def test_paho_and_the_hub_talk_through_the_embedded_broker(hub_factory, caplog) -> None:
    caplog.set_level(logging.INFO, logger="hub.plugins")
    port, prefix = free_port(), unique("t")
    hub, (received,) = await embedded_hub(hub_factory, {"port": port}, [f"{prefix}/+/data"])
    assert hub.data[DATA_BROKER_URL] == f"mqtt://127.0.0.1:{port}"
    assert "MQTT 3.1.1" in caplog.text and "deploy/mosquitto.conf" in caplog.text
    peer = await PahoPeer().connect(port)
    await peer.subscribe(f"{prefix}/+/commands")
    await peer.publish(f"{prefix}/n1/data", b'{"temperature": 21.5}')
    await wait_until(lambda: len(received) == 1, message="the message at the hub")
    assert received == [(f"{prefix}/n1/data", b'{"temperature": 21.5}', False)]
    await hub.messages.publish(f"{prefix}/n1/commands", b'{"message_id": "a"}')
    await wait_until(lambda: len(peer.messages) == 1, message="the command at paho")
    assert peer.messages[0].payload == b'{"message_id": "a"}'
    await peer.close()
    await hub.async_stop()
    with pytest.raises(OSError):  # the listener is gone after shutdown
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def test_with_users_only_accounts_connect_and_the_hub_uses_its_own(hub_factory, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    port, prefix, password = free_port(), unique("t"), "node-" + unique("pw")
    hub, (received,) = await embedded_hub(hub_factory, {"port": port, "users": {"esp32": password}}, [f"{prefix}/#"])
    assert hub.data[DATA_MQTT].connected
    url = hub.data[DATA_BROKER_URL]
    assert url.startswith("mqtt://hub-internal-") and password not in url
    anonymous = await PahoPeer().connect(port)
    assert not anonymous.accepted
    wrong = await PahoPeer(username="esp32", password="nope").connect(port)
    assert not wrong.accepted
    node = await PahoPeer(username="esp32", password=password).connect(port)
    assert node.accepted
    await node.publish(f"{prefix}/x", b"1")
    await wait_until(lambda: len(received) == 1, message="the node's message")
    written = [path.read_bytes() for path in hub.data_dir.rglob("*") if path.is_file()]
    assert not any(password.encode() in content for content in written)  # hashed in memory only
    for peer in (anonymous, wrong, node):
        await peer.close()
    await hub.async_stop()
    assert password not in caplog.text and url.split("@")[0] not in caplog.text


async def test_a_non_loopback_bind_without_users_is_a_config_error(hub_factory) -> None:
    with pytest.raises(ConfigError) as error:
        await hub_factory({"broker": {"host": "0.0.0.0"}}, builtins=EMBEDDED, start=False)
    expected = (
        "config.yaml: broker -> host: listening on 0.0.0.0 (not loopback) needs users: "
        "(no anonymous broker on the LAN), got '0.0.0.0'"
    )
    assert error.value.messages == [expected]
    for host in ("192.168.1.10", "::", "broker.lan"):
        with pytest.raises(ConfigError):
            await hub_factory({"broker": {"host": host}}, builtins=EMBEDDED, start=False)
    with_users = await hub_factory(
        {"broker": {"host": "0.0.0.0", "users": {"esp32": "pw"}}}, builtins=EMBEDDED, start=False
    )
    assert with_users.config["broker"]["host"] == "0.0.0.0"  # valid (not started: tests bind loopback only)
    assert (await hub_factory({"broker": {"host": "::1"}}, builtins=EMBEDDED, start=False)).config["broker"]


async def test_a_taken_port_stops_the_hub_with_what_to_do(hub_factory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        hub = await hub_factory({"broker": {"port": port}}, builtins=EMBEDDED, start=False)
        with pytest.raises(StartupError) as error:
            await hub.async_run()
    assert str(error.value) == (
        f"Cannot start the embedded MQTT broker: 127.0.0.1:{port} is already in use (is Mosquitto running?). "
        f"To use that broker, set in config.yaml:\n  mqtt:\n    broker: mqtt://127.0.0.1:{port}\n"
        "or give the embedded broker another port (broker: port:)."
    )
    assert hub.state is HubState.STOPPED  # what did start was stopped again


async def test_no_embedded_broker_for_an_external_one_or_cli_commands(hub_factory, hub_mqtt_url) -> None:
    external = await hub_factory(
        {"mqtt": {"broker": hub_mqtt_url, "client_id": unique("hub"), "session_expiry": 60}}, builtins=EMBEDDED
    )
    assert DATA_BROKER not in external.data and external.data[DATA_BROKER_URL] == hub_mqtt_url
    cli = await hub_factory({"broker": {"port": free_port()}}, builtins=EMBEDDED, role=ROLE_CLI)
    assert DATA_BROKER_URL not in cli.data and DATA_MQTT not in cli.data


async def test_the_mqtt_plugin_without_any_broker_says_so(hub_factory) -> None:
    with pytest.raises(StartupError, match="mqtt: broker: is not set"):
        await hub_factory({}, builtins=("hub.plugins.mqtt",))
