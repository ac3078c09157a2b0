"""The device-ACL scenario, played against Mosquitto (tests/mqtt/test_mosquitto_acl.py) and the embedded broker
(tests/broker/test_broker_acl.py): what one device may and may not do, seen from the hub."""

from __future__ import annotations

from dataclasses import dataclass

from mqtt_helpers import PahoPeer

from hub import Hub
from hub.testing import wait_until

HUB_FILTERS = ("devices/#", "homeassistant/#", "esphome/#")
"""What the hub listens to in the scenario (plus each ESPHome name's ``NAME/#``)."""


@dataclass
class Device:
    mac: str
    """12 lower-case hex digits: its username and its topic spelling."""
    password: str
    esphome: str | None = None


def listen(hub: Hub, *esphome_names: str) -> list[tuple[str, bytes]]:
    """Collect everything the scenario's devices could publish, into one list (call before the hub starts)."""
    received: list[tuple[str, bytes]] = []
    for topic_filter in (*HUB_FILTERS, *(f"{name}/#" for name in esphome_names)):
        hub.messages.subscribe(topic_filter, lambda topic, payload, retained: received.append((topic, payload)))
    return received


def topics(received: list[tuple[str, bytes]]) -> list[str]:
    return [topic for topic, _payload in received]


async def publish_refused_then_good(
    peer: PahoPeer, received: list[tuple[str, bytes]], refused: str, good: str, marker: str
) -> None:
    """Publish on ``refused`` and then on ``good``: the good one reaches the hub, the refused one never does."""
    await peer.publish(refused, f"spoofed {marker}".encode())
    await peer.publish(good, marker.encode())
    await wait_until(lambda: (good, marker.encode()) in received, message=f"{good} at the hub")
    assert refused not in topics(received), f"{refused} reached the hub"


async def json_contract(
    hub: Hub, port: int, received: list[tuple[str, bytes]], a: Device, b: Device
) -> tuple[PahoPeer, dict[str, bool]]:
    """Device A: its own data reaches the hub, data as B never does, it reads its own commands and never B's.

    Returns A's peer and, per filter it tried, whether the broker granted the subscription (Mosquitto grants
    any filter and delivers only what the ACL lets through; the embedded broker refuses what it cannot cover).
    """
    peer = await PahoPeer(username=a.mac, password=a.password).connect(port)
    assert peer.accepted
    own = f"devices/{a.mac}/data"
    await peer.publish(own, b'{"temperature": 21.5}')
    await wait_until(lambda: (own, b'{"temperature": 21.5}') in received, message="A's own data at the hub")
    for leaf in ("data", "status", "ack"):
        await publish_refused_then_good(peer, received, f"devices/{b.mac}/{leaf}", own, f"after-{leaf}")
    for refused in (f"devices/{a.mac}/commands", f"devices/{a.mac}/other", f"{a.mac}/data", "other"):
        await publish_refused_then_good(peer, received, refused, own, f"after-{refused}")

    granted = {}
    for topic_filter in ("#", "devices/#", f"devices/{b.mac}/commands", "devices/+/commands", own):
        await peer.subscribe(topic_filter)
        granted[topic_filter] = not peer.granted[0].is_failure
    await peer.subscribe(f"devices/{a.mac}/commands")
    assert not peer.granted[0].is_failure
    await hub.messages.publish(f"devices/{b.mac}/commands", b'{"message_id": "for-b"}')
    await hub.messages.publish(f"devices/{b.mac}/data", b'{"from": "hub"}')
    await hub.messages.publish(f"devices/{a.mac}/commands", b'{"message_id": "for-a"}')
    await wait_until(lambda: any(m.payload == b'{"message_id": "for-a"}' for m in peer.messages), message="A's command")
    # Mosquitto 2.0 may deliver a message once per matching subscription: compare what, not how often.
    assert {(m.topic, m.payload) for m in peer.messages} == {(f"devices/{a.mac}/commands", b'{"message_id": "for-a"}')}
    return peer, granted


async def esphome_node(hub: Hub, port: int, received: list[tuple[str, bytes]], c: Device, other: str) -> PahoPeer:
    """Device C bound to an ESPHome name: its node's topics reach the hub, another node's never do."""
    name = c.esphome
    assert name is not None
    peer = await PahoPeer(username=c.mac, password=c.password).connect(port)
    assert peer.accepted
    allowed = (
        f"{name}/status",
        f"{name}/sensor/temperature/state",
        f"{name}/debug",
        f"homeassistant/sensor/{name}/temperature/config",
        f"esphome/discover/{name}",
        f"devices/{c.mac}/ack",
    )
    for topic in allowed:
        await peer.publish(topic, b"ok")
        await wait_until(lambda topic=topic: (topic, b"ok") in received, message=f"{topic} at the hub")
    good = f"{name}/sensor/temperature/state"
    for refused in (
        f"{other}/sensor/temperature/state",
        f"homeassistant/sensor/{other}/temperature/config",
        f"homeassistant/device/{name}/config",
        f"esphome/discover/{other}",
        "homeassistant/status",
    ):
        await publish_refused_then_good(peer, received, refused, good, f"after-{refused}")
    await peer.subscribe(f"{name}/switch/relay/command")
    await peer.subscribe("homeassistant/status")
    await peer.subscribe(f"{other}/switch/relay/command")
    await hub.messages.publish(f"{other}/switch/relay/command", b"ON")
    await hub.messages.publish(f"{name}/switch/relay/command", b"OFF")
    await hub.messages.publish("homeassistant/status", b"online")
    await wait_until(lambda: len(peer.messages) == 2, message="C's command and Home Assistant's birth")
    assert sorted((m.topic, m.payload) for m in peer.messages) == [
        ("homeassistant/status", b"online"),
        (f"{name}/switch/relay/command", b"OFF"),
    ]
    return peer
