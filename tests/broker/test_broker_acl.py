"""The embedded broker with device credentials: per-device ACLs, and logins checked off the loop, cached, throttled."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from pathlib import Path

import pytest
from acl_scenario import Device, esphome_node, json_contract, listen
from amqtt.broker import Broker
from mqtt_helpers import EMBEDDED, PahoPeer, unique

from hub import StartupError
from hub.plugins.broker import DATA_BROKER, logins
from hub.plugins.broker.amqtt_plugins import AclBroker
from hub.plugins.broker.credentials import CredentialStore, DeviceCredential, hash_password
from hub.plugins.mqtt import DATA_MQTT
from hub.testing import free_port, wait_until

USER_PASSWORD = "tools-" + unique("pw")


def random_mac() -> str:
    return unique("x")[-10:].rjust(12, "0")


def add_device(data_dir: Path, esphome: str | None = None) -> Device:
    """Credentials as `hub device credentials add` makes them (that command has its own tests)."""
    device = Device(random_mac(), unique("pw"), esphome)
    store = CredentialStore.in_dir(data_dir)
    with store.transaction():
        mac = ":".join(device.mac[i : i + 2] for i in range(0, 12, 2))
        store.devices[device.mac] = DeviceCredential(
            device.mac, mac, hash_password(device.password), time.time(), esphome
        )
    return device


async def start_hub(hub_factory, tmp_path: Path, *esphome_names: str, **broker):
    port = free_port()
    config = {
        "hub": {"data_dir": str(tmp_path / "data")},
        "broker": {"port": port, **broker},
        "mqtt": {"reconnect": {"min_delay": 0.05}},
    }
    hub = await hub_factory(config, builtins=EMBEDDED, start=False)
    received = listen(hub, *esphome_names)
    await hub.async_start()
    return hub, port, received


def logins_counted(hub, result: str) -> float:
    return hub.metrics.value("broker_logins", result=result)


async def test_a_device_publishes_and_reads_only_its_own_topics(hub_factory, tmp_path) -> None:
    data_dir = tmp_path / "data"
    a, b, c = add_device(data_dir), add_device(data_dir), add_device(data_dir, esphome="kitchen")
    hub, port, received = await start_hub(hub_factory, tmp_path, "kitchen", "garage")
    peer, granted = await json_contract(hub, port, received, a, b)
    assert granted == {
        "#": False,
        "devices/#": False,
        f"devices/{b.mac}/commands": False,
        "devices/+/commands": False,
        f"devices/{a.mac}/data": False,
    }
    node = await esphome_node(hub, port, received, c, other="garage")
    assert hub.metrics.value("broker_acl_denied", action="publish") == 12
    assert hub.metrics.value("broker_acl_denied", action="subscribe") == 6
    for each in (peer, node):
        await each.close()
    await hub.async_stop()


async def test_anonymous_clients_and_wills_on_foreign_topics_are_refused(hub_factory, tmp_path) -> None:
    data_dir = tmp_path / "data"
    a, b = add_device(data_dir), add_device(data_dir)
    hub, port, received = await start_hub(hub_factory, tmp_path)
    assert not await PahoPeer().try_login(port)
    spoofing = PahoPeer(username=a.mac, password=a.password)
    spoofing.client.will_set(f"devices/{b.mac}/status", b"offline", qos=1, retain=True)
    assert not await spoofing.try_login(port)
    assert logins_counted(hub, "will_denied") == 1 and logins_counted(hub, "no_credentials") == 1
    honest = PahoPeer(username=a.mac, password=a.password)
    honest.client.will_set(f"devices/{a.mac}/status", b"offline", qos=1, retain=True)
    await honest.connect(port)
    assert honest.accepted
    await honest.close()
    await hub.async_stop()


async def test_credentials_added_or_removed_while_running_apply_to_the_next_connect(hub_factory, tmp_path) -> None:
    data_dir = tmp_path / "data"
    first = add_device(data_dir)
    hub, port, received = await start_hub(hub_factory, tmp_path)
    late = add_device(data_dir)
    peer = await PahoPeer(username=late.mac, password=late.password).connect(port)
    assert peer.accepted
    await peer.publish(f"devices/{late.mac}/data", b'{"n": 1}')
    await wait_until(lambda: (f"devices/{late.mac}/data", b'{"n": 1}') in received, message="the new device's data")
    await peer.close()
    store = CredentialStore.in_dir(data_dir)
    with store.transaction():
        del store.devices[first.mac]
    assert not await PahoPeer(username=first.mac, password=first.password).try_login(port)
    await hub.async_stop()


async def test_failed_logins_are_throttled_and_never_lock_out_known_good_ones(hub_factory, tmp_path) -> None:
    """An Argon2 account: three failures from an address, then that address is refused unchecked; a device's
    cheap check and a password that passed before are still accepted from the same address."""
    device = add_device(tmp_path / "data")
    hub, port, _received = await start_hub(
        hub_factory, tmp_path, users={"tools": USER_PASSWORD}, login_failures={"burst": 3, "per_minute": 0.01}
    )
    assert await PahoPeer(username="tools", password=USER_PASSWORD).try_login(port)
    for _ in range(3):
        assert not await PahoPeer(username="tools", password="wrong").try_login(port)
    assert logins_counted(hub, "bad_password") == 3
    for password in ("wrong", "also wrong", USER_PASSWORD + "!", "x", "y"):
        assert not await PahoPeer(username="tools", password=password).try_login(port)
    assert logins_counted(hub, "throttled") == 5 and logins_counted(hub, "bad_password") == 3
    assert not await PahoPeer(username="nobody", password="x").try_login(port)
    assert logins_counted(hub, "unknown_user") == 1
    assert await PahoPeer(username="tools", password=USER_PASSWORD).try_login(port)
    assert logins_counted(hub, "accepted_cached") == 1
    assert await PahoPeer(username=device.mac, password=device.password).try_login(port)
    for _ in range(3):  # a device's check is cheap and never throttled, so nobody behind this address is locked out
        assert not await PahoPeer(username=device.mac, password="wrong").try_login(port)
    assert await PahoPeer(username=device.mac, password=device.password).try_login(port)
    await hub.async_stop()


async def test_argon2_checks_run_off_the_loop_and_are_bounded(hub_factory, tmp_path, monkeypatch) -> None:
    """While the Argon2 workers are busy, a second check is refused at once, and devices still connect and publish."""
    threads: list[str] = []
    release = threading.Event()
    real_verify = logins.verify

    def held_verify(password_hash: str, password: str) -> bool:
        threads.append(threading.current_thread().name)
        release.wait(10)
        return real_verify(password_hash, password)

    device = add_device(tmp_path / "data")
    hub, port, received = await start_hub(hub_factory, tmp_path, users={"tools": USER_PASSWORD}, max_pending_logins=1)
    monkeypatch.setattr(logins, "verify", held_verify)
    waiting = PahoPeer(username="tools", password=USER_PASSWORD)
    waiting_connect = asyncio.create_task(waiting.connect(port))
    await wait_until(lambda: len(threads) == 1, message="the first check in a worker thread")
    assert threads[0].startswith("broker-login") and threads[0] != threading.main_thread().name
    assert not await PahoPeer(username="tools", password=USER_PASSWORD + "x").try_login(port)
    assert logins_counted(hub, "busy") == 1
    node = await PahoPeer(username=device.mac, password=device.password).connect(port)
    assert node.accepted
    await node.publish(f"devices/{device.mac}/data", b'{"n": 1}')
    await wait_until(lambda: (f"devices/{device.mac}/data", b'{"n": 1}') in received, message="data while Argon2 waits")
    release.set()
    await waiting_connect
    assert waiting.accepted
    for peer in (node, waiting):
        await peer.close()
    await hub.async_stop()
    assert DATA_BROKER not in hub.data


def test_the_acl_hook_still_exists_in_amqtt() -> None:
    """AclBroker overrides amqtt's private Broker._topic_filtering; a renamed or reshaped one must fail loudly here
    (the ACL tests above would fail too: every refusal would be gone)."""
    assert list(inspect.signature(Broker._topic_filtering).parameters) == ["self", "session", "topic", "action"]
    assert AclBroker._topic_filtering is not Broker._topic_filtering


async def test_a_refused_connect_never_touches_the_session_of_its_client_id(hub_factory, tmp_path) -> None:
    """amqtt deletes (clean session) or takes over (persistent) a client id's session before it authenticates; the
    front door refuses first, so a wrong password with the hub's client id neither wipes nor disconnects the hub."""
    device = add_device(tmp_path / "data")
    hub, port, received = await start_hub(hub_factory, tmp_path)
    client_id = hub.data[DATA_MQTT].client_id
    for clean in (True, False):
        attacker = PahoPeer(client_id, username=device.mac, password="wrong", clean_session=clean)
        assert not await attacker.try_login(port)
    node = await PahoPeer(username=device.mac, password=device.password).connect(port)
    await node.publish(f"devices/{device.mac}/data", b'{"n": 1}')
    await wait_until(lambda: (f"devices/{device.mac}/data", b'{"n": 1}') in received, message="data at the hub")
    assert hub.metrics.value("mqtt_connections") == 1  # never disconnected
    await node.close()
    await hub.async_stop()


async def test_the_front_door_closes_what_is_not_a_3_1_1_connect(hub_factory, tmp_path) -> None:
    add_device(tmp_path / "data")
    hub, port, _received = await start_hub(hub_factory, tmp_path)
    mqtt5_connect = bytes.fromhex("101000044d5154540502003c0000000378797a")[:2] + bytes.fromhex(
        "00044d5154540502003c000003787a79"
    )
    for first_bytes, answer in (
        (b"\x30\x05\x00\x01a\x00\x00", b""),  # a PUBLISH before any CONNECT
        (b"\x10\xff\xff\xff\x7f", b""),  # a CONNECT announcing 256 MiB
        (mqtt5_connect, b"\x20\x02\x00\x01"),  # MQTT 5: unacceptable protocol version
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(first_bytes)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == answer
        writer.close()
    await hub.async_stop()


async def test_a_damaged_credentials_file_stops_the_start_or_keeps_the_last_good_copy(hub_factory, tmp_path) -> None:
    device = add_device(tmp_path / "data")
    hub, port, _received = await start_hub(hub_factory, tmp_path)
    store_file = tmp_path / "data" / "device-credentials.json"
    good = store_file.read_bytes()
    store_file.write_text("{not json")
    assert await PahoPeer(username=device.mac, password=device.password).try_login(port)  # the last good copy
    await hub.async_stop()
    with pytest.raises(StartupError, match="device-credentials.json is damaged"):
        await start_hub(hub_factory, tmp_path)
    store_file.write_bytes(good)
