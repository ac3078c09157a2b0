"""deploy/mosquitto.conf with deploy/mosquitto.acl and credentials from `hub device credentials add`: a device
reaches only its own topics, seen from the hub, on a private Mosquitto."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest
from acl_scenario import Device, esphome_node, json_contract, listen
from mqtt_helpers import MOSQUITTO_ACL, MQTT_ONLY, PahoPeer, deployed_config, mqtt_config, unique

from hub.core.cli import main
from hub.plugins.broker.acl import DEVICE_PATTERNS
from hub.testing import wait_until

pytestmark = pytest.mark.mosquitto

HUB_PASSWORD = "Hub-" + unique("pw")


def test_the_shipped_acl_has_exactly_the_device_patterns_the_embedded_broker_enforces() -> None:
    lines = [line.split(None, 2) for line in MOSQUITTO_ACL.read_text().splitlines() if line.startswith("pattern ")]
    assert [(access, topic) for _pattern, access, topic in lines] == list(DEVICE_PATTERNS)
    assert "user hub\ntopic readwrite #\n" in MOSQUITTO_ACL.read_text()


def add_device(config: Path, capsys, mac: str, *extra: str) -> Device:
    assert main(["device", "credentials", "add", mac, "-c", str(config), *extra]) == 0
    password = capsys.readouterr().out.strip()
    esphome = extra[extra.index("--esphome") + 1] if "--esphome" in extra else None
    return Device(mac.replace(":", "").lower(), password, esphome)


@pytest.fixture
async def deployed(private_mosquitto, tmp_path):
    """The deployed files (hub account made with mosquitto_passwd) and a config.yaml pointing the CLI at them."""
    broker = private_mosquitto(config="")
    directory = broker.workdir
    command = ["mosquitto_passwd", "-b", "-c", str(directory / "passwd"), "hub", HUB_PASSWORD]
    await asyncio.to_thread(subprocess.run, command, check=True)
    broker.conf.write_text(deployed_config(broker.port, directory) + broker.conf.read_text())
    config = tmp_path / "config.yaml"
    config.write_text(
        f"hub:\n  data_dir: {tmp_path / 'data'}\n"
        f"broker:\n  mosquitto:\n    password_file: {directory / 'passwd'}\n    acl_file: {directory / 'acl'}\n"
    )
    return broker, config


async def test_a_device_reaches_only_its_own_topics_through_mosquitto(hub_factory, deployed, capsys) -> None:
    broker, config = deployed
    a = add_device(config, capsys, "24:6F:28:AA:00:01")
    b = add_device(config, capsys, "24-6f-28-aa-00-02")
    c = add_device(config, capsys, "246f28aa0003", "--esphome", "kitchen")
    await broker.async_start()
    url = f"mqtt://hub:{HUB_PASSWORD}@127.0.0.1:{broker.port}"
    hub = await hub_factory({"mqtt": mqtt_config(url, unique("hub"))}, builtins=MQTT_ONLY, start=False)
    received = listen(hub, "kitchen", "garage")
    await hub.async_start()
    peer, granted = await json_contract(hub, broker.port, received, a, b)
    assert all(granted.values())  # Mosquitto 2.0 grants any filter and delivers only what the ACL lets through
    node = await esphome_node(hub, broker.port, received, c, other="garage")

    late = add_device(config, capsys, "24:6f:28:aa:00:04")
    assert not await PahoPeer(username=late.mac, password=late.password).try_login(broker.port)
    broker.process.send_signal(signal.SIGHUP)  # what `systemctl reload mosquitto` does
    await wait_until(
        lambda: PahoPeer(username=late.mac, password=late.password).try_login(broker.port),
        message="the new device accepted after the reload",
        interval=0.1,
    )
    for each in (peer, node):
        await each.close()
    await hub.async_stop()
