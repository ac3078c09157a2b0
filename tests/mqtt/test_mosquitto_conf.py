"""deploy/mosquitto.conf works with Mosquitto 2.0 as written, and its tuning block keeps what the default drops."""

from __future__ import annotations

import asyncio
import logging
import subprocess

import pytest
from mqtt_helpers import MOSQUITTO_CONF, MQTT_ONLY, PahoPeer, collect, deployed_config, mqtt_config, unique

from hub.core.errors import StartupError
from hub.plugins.mqtt import DATA_MQTT
from hub.testing import wait_until
from hub.testing.mosquitto import tuning_lines

pytestmark = pytest.mark.mosquitto

PASSWORD = "Corr3ct-Horse-" + unique("pw")


def test_the_packaged_tuning_is_exactly_the_deployment_block() -> None:
    """The test kit's private Mosquitto (from the package) and deployments (deploy/) are tuned alike, line by line."""
    block = MOSQUITTO_CONF.read_text().split("\n# >>> hub tuning\n")[1].split("\n# <<< hub tuning\n")[0]
    deployed = [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert deployed == tuning_lines()
    assert {line.split()[0] for line in deployed} == {
        "max_inflight_messages",
        "max_queued_messages",
        "max_queued_bytes",
    }


@pytest.fixture
async def deployed(private_mosquitto):
    """Mosquitto running deploy/mosquitto.conf and deploy/mosquitto.acl, with only the port and the paths changed."""
    broker = private_mosquitto(config="")
    directory = broker.workdir
    command = ["mosquitto_passwd", "-b", "-c", str(directory / "passwd"), "hub", PASSWORD]
    await asyncio.to_thread(subprocess.run, command, check=True)
    broker.conf.write_text(deployed_config(broker.port, directory) + broker.conf.read_text())
    await broker.async_start()
    return broker


async def test_the_deployed_config_refuses_anonymous_clients_and_accepts_accounts(deployed) -> None:
    anonymous = await PahoPeer().connect(deployed.port)
    assert not anonymous.accepted
    await anonymous.close()
    account = await PahoPeer(username="hub", password=PASSWORD).connect(deployed.port)
    assert account.accepted
    await account.close()


async def test_the_hub_connects_with_its_account_and_never_logs_the_password(hub_factory, deployed, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"mqtt://hub:{PASSWORD}@127.0.0.1:{deployed.port}"
    hub = await hub_factory({"mqtt": mqtt_config(url, unique("hub"))}, builtins=MQTT_ONLY)
    assert hub.data[DATA_MQTT].connected
    await hub.async_stop()
    wrong = f"mqtt://hub:Wrong-{PASSWORD}@127.0.0.1:{deployed.port}"
    with pytest.raises(StartupError) as refused:
        await hub_factory({"mqtt": mqtt_config(wrong, unique("hub"))}, builtins=MQTT_ONLY)
    message = str(refused.value)
    assert f"The MQTT broker mqtt://127.0.0.1:{deployed.port} refused the hub" in message
    assert "not authori" in message.lower() or "bad user name or password" in message.lower()
    assert PASSWORD not in message and PASSWORD not in caplog.text


@pytest.mark.parametrize("tuned", [True, False], ids=["tuned", "mosquitto-defaults"])
async def test_messages_queued_while_the_hub_is_away_survive_only_with_the_tuning(
    hub_factory, private_mosquitto, tuned
) -> None:
    broker = private_mosquitto()
    if not tuned:
        broker.conf.write_text(
            f"listener {broker.port} 127.0.0.1\nallow_anonymous true\n"
            + broker.conf.read_text().split("persistence_location")[1].split("\n", 1)[1]
        )
    await broker.async_start()
    topic, client_id, count = f"{unique('t')}/data", unique("hub"), 1500
    config = {"mqtt": mqtt_config(broker.url, client_id)}
    first = await hub_factory(config, builtins=MQTT_ONLY, start=False)
    collect(first, topic)
    await first.async_start()
    await first.async_stop()
    peer = await PahoPeer().connect(broker.port)
    infos = [peer.client.publish(topic, str(n), qos=1) for n in range(count)]
    await asyncio.to_thread(infos[-1].wait_for_publish, 10)
    await peer.close()

    second = await hub_factory(config, builtins=MQTT_ONLY, start=False)
    received = collect(second, topic)
    await second.async_start()
    if tuned:
        await wait_until(lambda: len(received) == count, message=f"all {count} queued messages")
        assert [int(payload) for _, payload, _ in received] == list(range(count))
    else:
        await asyncio.sleep(1.0)
        assert len(received) < count  # Mosquitto's default max_queued_messages (1000) dropped the rest
    await second.async_stop()
