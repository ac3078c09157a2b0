"""Commands to MQTT-discovered ESPHome entities, through the real Mosquitto: published on the entity's command topic
with its config's payloads, succeeded when the node reports the state.

The node is a paho client that sends a stock ESPHome node's discovery (esphome_messages.py), subscribes its
command topics as ESPHome does, and answers each command the way ESPHome's MQTT components do: a switch
publishes its new state, a number its value, an update its progress and then its new version.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import hub_esphome.plugin
import orjson
import pytest
from esphome_messages import EsphomeNode, Message
from esphome_testing import Device

from hub import EVENT_STATE_CHANGED, CommandRejected, Hub, StateChangedData
from hub.testing import wait_until

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def node() -> EsphomeNode:
    return EsphomeNode(f"relay-{uuid.uuid4().hex[:6]}", friendly_name="Relay", prefix=f"hubtest-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def device(hub_mqtt_url: str, node: EsphomeNode) -> Iterator[Device]:
    device = Device(hub_mqtt_url, will=(node.status_topic, b"offline"))
    yield device
    device.clean_up()


@pytest.fixture
async def hub(hub_mqtt_url: str, hub_factory: Any, node: EsphomeNode) -> AsyncIterator[Hub]:
    hub = await hub_factory(
        {
            "mqtt": {"broker": hub_mqtt_url, "client_id": f"hub-esphome-{uuid.uuid4().hex[:12]}", "session_expiry": 0},
            "esphome": {"discovery_prefix": node.prefix, "command_timeout": 1.0},
        },
        builtins=("hub.plugins.mqtt", "hub.plugins.presence"),
        plugins=[(hub_esphome.plugin, "esphome")],
    )
    yield hub
    assert hub.messages.handler_errors == 0


def switch_answers(node: EsphomeNode) -> Any:
    """ESPHome's mqtt_switch: ON/OFF/TOGGLE in, the new state out (retained)."""
    state = {"on": False}

    def respond(payload: bytes) -> list[Message]:
        word = payload.decode().upper()
        state["on"] = (not state["on"]) if word == "TOGGLE" else word == "ON"
        return [node.state("switch", "relay", "ON" if state["on"] else "OFF", retained=True)]

    return respond


async def connect(hub: Hub, device: Device, node: EsphomeNode, *extra: Message) -> None:
    await device.send(
        node.birth(),
        node.switch("relay", "Relay"),
        node.state("switch", "relay", "OFF", retained=True),
        node.button("restart", "Restart"),
        node.number("level", "Level", 0, 100, 1),
        node.update(),
        node.state(
            "update", "firmware", orjson.dumps({"installed_version": "1.0", "latest_version": "1.1"}), retained=True
        ),
        *extra,
    )
    registered = await wait_until(lambda: (n := hub.registry.get(node.node_id)) and len(n.entities) == 4 and n)
    await wait_until(
        lambda: registered.entities["update.firmware"].state and registered.entities["switch.relay"].state is False
    )


async def test_switch_number_and_button_go_to_their_command_topics_and_succeed_on_the_reported_state(
    hub: Hub, device: Device, node: EsphomeNode
) -> None:
    await device.answer(f"{node.name}/switch/relay/command", switch_answers(node))
    await device.answer(
        f"{node.name}/number/level/command",
        lambda payload: [node.state("number", "level", f"{float(payload):.6f}", retained=True)],
    )
    await device.answer(f"{node.name}/button/restart/command", lambda _payload: [])
    await connect(hub, device, node)
    relay = hub.registry.get(node.node_id).entities["switch.relay"]

    on = hub.commands.submit(node.node_id, "SWITCH", {"entity": "relay", "state": "on"}, sender="test")
    done = await hub.commands.wait_done(on.id, 10)
    assert (done.status, done.detail) == ("succeeded", "switch.relay is ON"), done.as_dict()
    assert [status for status, _ts, _detail in done.history] == ["queued", "sent", "delivered", "succeeded"]
    assert relay.state is True

    toggle = hub.commands.submit(node.node_id, "SWITCH", {"entity": "switch.relay", "state": "TOGGLE"}, sender="test")
    assert (await hub.commands.wait_done(toggle.id, 10)).status == "succeeded"
    assert relay.state is False

    already = hub.commands.submit(node.node_id, "SWITCH", {"entity": "relay", "state": "OFF"}, sender="test")
    done = await hub.commands.wait_done(already.id, 10)
    assert (done.status, done.detail) == ("succeeded", "switch.relay is OFF already")

    level = hub.commands.submit(node.node_id, "NUMBER_SET", {"entity": "level", "value": 42}, sender="test")
    assert (await hub.commands.wait_done(level.id, 10)).status == "succeeded"
    press = hub.commands.submit(node.node_id, "BUTTON_PRESS", {"entity": "restart"}, sender="test")
    assert (await hub.commands.wait_done(press.id, 10)).status == "succeeded"

    # The payloads as Home Assistant would send them: TOGGLE as the opposite state, the number as text.
    # (A press succeeds when the broker took it, so the node may get it a moment later.)
    await wait_until(lambda: len(device.received) == 5, message="the press at the node")
    assert device.received == [
        (f"{node.name}/switch/relay/command", b"ON"),
        (f"{node.name}/switch/relay/command", b"OFF"),
        (f"{node.name}/switch/relay/command", b"OFF"),  # "already OFF" is sent all the same: the node decides
        (f"{node.name}/number/level/command", b"42"),
        (f"{node.name}/button/restart/command", b"PRESS"),
    ]


async def test_a_node_that_does_not_confirm_fails_the_command_saying_what_it_reports(
    hub: Hub, device: Device, node: EsphomeNode
) -> None:
    await device.answer(f"{node.name}/switch/relay/command", lambda _payload: [])  # a stuck relay: no new state
    await connect(hub, device, node)
    command = hub.commands.submit(node.node_id, "SWITCH", {"entity": "relay", "state": "ON"}, sender="test")
    done = await hub.commands.wait_done(command.id, 10)
    assert (done.status, done.detail) == ("failed", "no confirmation from the node: switch.relay is OFF")
    assert device.received == [(f"{node.name}/switch/relay/command", b"ON")]


async def test_update_install_is_acknowledged_when_it_starts_and_succeeds_on_the_new_version(
    hub: Hub, device: Device, node: EsphomeNode
) -> None:
    def flash(payload: bytes) -> list[Message]:
        assert payload == b"INSTALL"  # the config's pl_inst
        progress = {"installed_version": "1.0", "latest_version": "1.1", "in_progress": True, "update_percentage": 5}
        return [
            node.state("update", "firmware", orjson.dumps(progress)),
            node.state("update", "firmware", orjson.dumps({"installed_version": "1.1", "latest_version": "1.1"})),
        ]

    await device.answer(f"{node.name}/update/firmware/command", flash)
    await connect(hub, device, node)
    command = hub.commands.submit(node.node_id, "UPDATE_INSTALL", {"entity": "firmware"}, sender="test")
    done = await hub.commands.wait_done(command.id, 10)
    assert done.status == "succeeded", done.as_dict()
    assert [status for status, _ts, _detail in done.history][-2:] == ["acknowledged", "succeeded"]
    assert done.detail == "update.firmware: 1.1 installed"


async def test_what_esphome_entities_cannot_take_is_refused_or_failed(
    hub: Hub, device: Device, node: EsphomeNode
) -> None:
    await connect(hub, device, node)
    # The JSON contract's actions are not this integration's: refused, so ota releases it through its manifest.
    for action in ("REBOOT", "FIRMWARE_UPDATE"):
        params = {"url": "http://127.0.0.1/fw.bin", "version": "1.1"} if action == "FIRMWARE_UPDATE" else {}
        with pytest.raises(CommandRejected) as refused:
            hub.commands.submit(node.node_id, action, params, sender="test")
        assert refused.value.code == "not_commandable"
    with pytest.raises(CommandRejected) as bad:
        hub.commands.submit(node.node_id, "SWITCH", {"entity": "relay", "state": "maybe"}, sender="test")
    assert bad.value.code == "invalid_params"
    for params, detail in (
        ({"entity": "heater", "state": "ON"}, f"{node.node_id} has no entity switch.heater"),
        ({"entity": "number.level", "state": "ON"}, "number.level is a number, not a switch"),
    ):
        command = hub.commands.submit(node.node_id, "SWITCH", params, sender="test")
        done = await hub.commands.wait_done(command.id, 10)
        assert (done.status, done.detail) == ("failed", detail)
        assert [status for status, _ts, _detail in done.history] == ["queued", "sent", "failed"]  # never delivered
    number = hub.commands.submit(node.node_id, "NUMBER_SET", {"entity": "level", "value": -1}, sender="test")
    assert (await hub.commands.wait_done(number.id, 10)).detail == "number.level takes 0–100, not -1"
    assert device.received == []


async def test_a_reading_another_hub_process_fanned_out_confirms_a_command_this_one_sent(
    hub: Hub, device: Device, node: EsphomeNode
) -> None:
    """Split deployment: this process sent the command, a worker got the node's state and fans it out; the
    fan-out fires it here as ``state_changed`` with ``origin`` (never ``state_reported``), which is the verdict."""
    await device.answer(f"{node.name}/switch/relay/command", lambda _payload: [])  # its state reaches the worker
    await connect(hub, device, node)
    command = hub.commands.submit(node.node_id, "SWITCH", {"entity": "relay", "state": "ON"}, sender="test")
    await wait_until(lambda: device.received and command.status == "delivered", message="the command at the node")
    entity = hub.registry.get(node.node_id).entities["switch.relay"]
    local: StateChangedData = {
        "node_id": node.node_id,
        "key": "switch.relay",
        "old_state": False,
        "new_state": True,
        "ts": hub.clock(),
    }
    hub.bus.fire(EVENT_STATE_CHANGED, local)  # a local change without origin (a retained replay) is no answer
    assert command.status == "delivered"
    remote = {**local, "origin": "worker-1"}
    entity.state = True  # as the fan-out applies it to this process's registry before firing
    hub.bus.fire(EVENT_STATE_CHANGED, remote)
    done = await hub.commands.wait_done(command.id, 10)
    assert (done.status, done.detail) == ("succeeded", "switch.relay is ON")
