"""The command lifecycle in the core: validation, priority, TTL, offline policies, answers, cancel, restore.

A test plugin plays the integration: it owns every node whose id starts with ``aa:`` and
"publishes" by recording the command (or failing, while its broker is "down").
"""

from __future__ import annotations

import asyncio

import pytest
import voluptuous as vol

from hub import Manifest
from hub.core.commands import (
    ACKNOWLEDGED,
    CANCELLED,
    DELIVERED,
    EXPIRED,
    FAILED,
    OFFLINE_REFUSE,
    QUEUED,
    SENT,
    SUCCEEDED,
    Command,
)
from hub.core.const import EVENT_COMMAND_UPDATED, REASON_MESSAGE, STATUS_OFFLINE, STATUS_ONLINE
from hub.core.errors import CommandNotFound, CommandRejected, HubError
from hub.core.plugins.hookspecs import hookimpl
from hub.testing import wait_until
from hub.testing.clock import FakeClock

NODE = "aa:00:00:00:00:01"
OTHER = "aa:00:00:00:00:02"


class FakeIntegration:
    """Delivers by recording; ``down`` makes every send fail as a transport without a broker does."""

    MANIFEST = Manifest(name="fake")

    def __init__(self) -> None:
        self.sent: list[Command] = []
        self.down = False
        self.sent_event = asyncio.Event()
        self.confirm: asyncio.Event | None = None
        """When set, ``deliver`` returns (the broker's confirm) only once this event is set."""
        self.confirmed: list[str] = []

    def owns(self, node) -> bool:
        return node.node_id.startswith("aa:")

    async def deliver(self, command, node) -> None:
        if self.down:
            raise HubError("no broker")
        self.sent.append(command)
        self.sent_event.set()
        if self.confirm is not None:
            await self.confirm.wait()
            self.confirmed.append(command.id)

    @hookimpl
    def hub_setup(self, hub) -> None:
        hub.commands.add_deliverer("fake", self)
        hub.commands.actions.register(
            "RELAY_CONTROL",
            {vol.Required("relay"): vol.All(int, vol.Range(1, 5)), vol.Required("state"): bool},
            "Switch a relay.",
            owner="fake",
        )
        for node_id in (NODE, OTHER, "bb:00:00:00:00:01"):
            node = hub.registry.get_or_register(node_id)
            hub.registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def integration() -> FakeIntegration:
    return FakeIntegration()


@pytest.fixture
async def hub(hub_factory, integration, clock):
    return await hub_factory(builtins=(), plugins=[(integration, "fake")], clock=clock)


async def wait_status(hub, command_id: str, status: str) -> Command:
    def reached() -> Command | None:
        command = hub.commands.get(command_id)
        return command if command.status == status else None

    return await wait_until(reached, timeout=5, message=f"command {status}")


async def test_a_command_goes_queued_sent_delivered_acknowledged_succeeded(hub, integration):
    updates: list[str] = []
    hub.bus.listen(EVENT_COMMAND_UPDATED, lambda event: updates.append(event.data["command"]["status"]))
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await wait_status(hub, command.id, DELIVERED)
    assert integration.sent[0].id == command.id
    assert hub.commands.acknowledge(NODE, command.id, "received")
    assert hub.commands.acknowledge(NODE, command.id, "ok")
    assert command.status == SUCCEEDED
    assert updates == [QUEUED, SENT, DELIVERED, ACKNOWLEDGED, SUCCEEDED]
    assert [status for status, _ts, _detail in command.history] == updates
    assert hub.commands.pending() == []


async def test_an_answer_that_overtakes_the_brokers_confirm_still_records_delivered(hub, integration):
    integration.confirm = asyncio.Event()
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await integration.sent_event.wait()
    assert command.status == SENT  # published, the broker's confirm not in yet
    assert hub.commands.acknowledge(NODE, command.id, "received")
    assert hub.commands.acknowledge(NODE, command.id, "ok")
    integration.confirm.set()
    await wait_until(lambda: integration.confirmed, timeout=5, message="deliver returned")
    assert command.status == SUCCEEDED
    assert [status for status, _ts, _detail in command.history] == [QUEUED, SENT, DELIVERED, ACKNOWLEDGED, SUCCEEDED]


async def test_a_verdict_the_deliverer_reaches_without_sending_records_no_delivery(hub, integration):
    integration.confirm = asyncio.Event()
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await integration.sent_event.wait()
    hub.commands.settle(command, "error", "no relay 9 on this node")  # from inside deliver, nothing sent
    integration.confirm.set()
    await wait_until(lambda: integration.confirmed, timeout=5, message="deliver returned")
    assert (command.status, command.detail) == (FAILED, "no relay 9 on this node")
    assert [status for status, _ts, _detail in command.history] == [QUEUED, SENT, FAILED]
    with pytest.raises(ValueError, match="unknown answer"):
        hub.commands.settle(command, "maybe")


async def test_a_node_side_error_fails_the_command_with_its_reason(hub):
    command = hub.commands.submit(NODE, "STATUS_REQUEST", sender="alice")
    await wait_status(hub, command.id, DELIVERED)
    hub.commands.acknowledge(NODE, command.id, "error", "sensor bus stuck")
    assert (command.status, command.detail) == (FAILED, "sensor bus stuck")


async def test_answers_that_match_no_pending_command_are_counted_and_change_nothing(hub):
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await wait_status(hub, command.id, DELIVERED)
    assert not hub.commands.acknowledge(OTHER, command.id, "ok")  # another node cannot answer for it
    assert not hub.commands.acknowledge(NODE, "f" * 32, "ok")
    assert not hub.commands.acknowledge(NODE, command.id, "maybe")
    assert command.status == DELIVERED and hub.commands.unknown_answers == 3
    hub.commands.acknowledge(NODE, command.id, "ok")
    assert not hub.commands.acknowledge(NODE, command.id, "error")  # a late, contradicting answer
    assert command.status == SUCCEEDED


@pytest.mark.parametrize(
    ("action", "params", "code"),
    [
        ("SELF_DESTRUCT", {}, "unknown_action"),
        ("RELAY_CONTROL", {"relay": 9, "state": True}, "invalid_params"),
        ("RELAY_CONTROL", {"relay": 1}, "invalid_params"),
        ("REBOOT", {"force": True}, "invalid_params"),
        ("FIRMWARE_UPDATE", {"url": "http://x/fw.bin"}, "invalid_params"),
    ],
)
async def test_bad_actions_and_params_are_refused_before_anything_is_sent(hub, integration, action, params, code):
    updates: list[object] = []
    hub.bus.listen(EVENT_COMMAND_UPDATED, updates.append)
    with pytest.raises(CommandRejected) as refused:
        hub.commands.submit(NODE, action, params, sender="alice")
    assert refused.value.code == code
    assert updates == [] and integration.sent == []


async def test_unknown_and_uncommandable_nodes_are_refused(hub):
    with pytest.raises(CommandRejected) as unknown:
        hub.commands.submit("cc:00:00:00:00:09", "REBOOT", sender="alice")
    assert unknown.value.code == "node_not_found"
    with pytest.raises(CommandRejected) as foreign:
        hub.commands.submit("bb:00:00:00:00:01", "REBOOT", sender="alice")
    assert foreign.value.code == "not_commandable"


async def test_a_plugin_action_is_validated_and_sent_with_its_params(hub, integration):
    command = hub.commands.submit(NODE, "RELAY_CONTROL", {"relay": 3, "state": True}, sender="alice")
    await wait_status(hub, command.id, DELIVERED)
    assert integration.sent[0].params == {"relay": 3, "state": True}


async def test_offline_node_refuse_policy_refuses(hub):
    hub.registry.set_status(hub.registry.get(NODE), STATUS_OFFLINE, "lwt")
    with pytest.raises(CommandRejected) as refused:
        hub.commands.submit(NODE, "REBOOT", sender="alice", offline_policy=OFFLINE_REFUSE)
    assert refused.value.code == "node_offline"


async def test_offline_node_queue_policy_waits_for_the_node(hub, integration):
    node = hub.registry.get(NODE)
    hub.registry.set_status(node, STATUS_OFFLINE, "lwt")
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await asyncio.sleep(0.05)
    assert command.status == QUEUED and integration.sent == []
    hub.registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE)
    await wait_status(hub, command.id, DELIVERED)


async def test_a_command_past_its_ttl_is_never_sent(hub, integration, clock):
    node = hub.registry.get(NODE)
    hub.registry.set_status(node, STATUS_OFFLINE, "lwt")
    command = hub.commands.submit(NODE, "REBOOT", sender="alice", ttl=30)
    clock.advance(31)
    hub.registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE)
    await wait_status(hub, command.id, EXPIRED)
    assert integration.sent == []


async def test_a_sent_command_without_a_verdict_expires(hub, clock):
    command = hub.commands.submit(NODE, "REBOOT", sender="alice", ttl=10)
    await wait_status(hub, command.id, DELIVERED)
    clock.advance(11)
    assert hub.commands.expire_due() == 1
    assert command.status == EXPIRED
    assert not hub.commands.acknowledge(NODE, command.id, "ok")  # too late


async def test_higher_priority_goes_first(hub, integration):
    integration.down = True  # hold everything in the queue while it fills
    low = hub.commands.submit(NODE, "STATUS_REQUEST", sender="a", priority=1)
    high = hub.commands.submit(OTHER, "REBOOT", sender="a", priority=9)
    await asyncio.sleep(0.05)
    integration.down = False
    await wait_status(hub, low.id, DELIVERED)
    await wait_status(hub, high.id, DELIVERED)
    assert [c.id for c in integration.sent] == [high.id, low.id]


async def test_a_send_that_fails_stays_queued_and_is_retried(hub, integration):
    integration.down = True
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await asyncio.sleep(0.05)
    assert command.status == QUEUED
    integration.down = False
    await wait_status(hub, command.id, DELIVERED)


async def test_cancel(hub):
    hub.registry.set_status(hub.registry.get(NODE), STATUS_OFFLINE, "lwt")
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    assert hub.commands.cancel(command.id, by="bob").status == CANCELLED
    assert command.detail == "cancelled by bob"
    with pytest.raises(CommandRejected):
        hub.commands.cancel(command.id, by="bob")
    with pytest.raises(CommandNotFound):
        hub.commands.cancel("0" * 32, by="bob")


async def test_wait_done_returns_at_the_verdict_or_the_timeout(hub):
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await wait_status(hub, command.id, DELIVERED)
    assert (await hub.commands.wait_done(command.id, 0.01)).status == DELIVERED
    waiter = asyncio.ensure_future(hub.commands.wait_done(command.id, 5))
    await asyncio.sleep(0)
    hub.commands.acknowledge(NODE, command.id, "ok")
    assert (await waiter).status == SUCCEEDED


async def test_restored_queued_commands_are_sent_after_start(hub_factory, clock):
    integration = FakeIntegration()
    hub = await hub_factory(builtins=(), plugins=[(integration, "fake")], clock=clock, start=False)
    stored = Command(
        id="c" * 32,
        node_id=NODE,
        action="REBOOT",
        params={},
        priority=5,
        ttl=300,
        created=clock(),
        sender="alice",
        updated=clock(),
        history=[(QUEUED, clock(), None)],
    )
    hub.commands.restore([Command.from_dict(stored.as_dict())])
    await hub.async_start()
    await wait_status(hub, stored.id, DELIVERED)
    assert integration.sent[0].id == stored.id


async def test_a_delivered_command_without_any_answer_is_sent_again_with_the_same_id(hub, integration):
    hub.commands.answer_timeout = 0.05
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await wait_until(lambda: len(integration.sent) >= 2, timeout=5, message="a second delivery")
    assert {sent.id for sent in integration.sent} == {command.id}
    assert any(detail and detail.startswith("sent again") for _s, _t, detail in command.history)
    hub.commands.acknowledge(NODE, command.id, "ok")
    assert command.status == SUCCEEDED
    sent = len(integration.sent)
    await asyncio.sleep(0.2)
    assert len(integration.sent) == sent  # answered: nothing more goes out


async def test_resending_stops_after_the_limit(hub, integration):
    hub.commands.answer_timeout = 0.02
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await wait_until(lambda: len(integration.sent) == 4, timeout=5, message="the first send and 3 resends")
    await asyncio.sleep(0.2)
    assert len(integration.sent) == 4 and command.status == DELIVERED


async def test_an_answered_command_is_not_sent_again(hub, integration):
    hub.commands.answer_timeout = 0.05
    command = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await wait_status(hub, command.id, DELIVERED)
    hub.commands.acknowledge(NODE, command.id, "received")
    await asyncio.sleep(0.2)
    assert len(integration.sent) == 1 and command.status == ACKNOWLEDGED


class ActionDeliverer:
    """A second integration reaching the same nodes that names its one action (``accepts``)."""

    def __init__(self) -> None:
        self.sent: list[Command] = []

    def accepts(self, action: str) -> bool:
        return action == "RELAY_CONTROL"

    def owns(self, node) -> bool:
        return node.node_id in (NODE, "bb:00:00:00:00:01")

    async def deliver(self, command, node) -> None:
        self.sent.append(command)


async def test_a_deliverer_that_names_an_action_gets_it_and_only_it(hub, integration):
    """Registered after the catch-all, it still wins its action; other actions keep their integration."""
    named = ActionDeliverer()
    hub.commands.add_deliverer("named", named)
    relay = hub.commands.submit(NODE, "RELAY_CONTROL", {"relay": 1, "state": True}, sender="alice")
    reboot = hub.commands.submit(NODE, "REBOOT", sender="alice")
    await wait_status(hub, relay.id, DELIVERED)
    await wait_status(hub, reboot.id, DELIVERED)
    assert [c.id for c in named.sent] == [relay.id]
    assert [c.id for c in integration.sent] == [reboot.id]
    # A node only the named deliverer reaches takes its action, and nothing else.
    hub.commands.submit("bb:00:00:00:00:01", "RELAY_CONTROL", {"relay": 2, "state": False}, sender="alice")
    with pytest.raises(CommandRejected) as refused:
        hub.commands.submit("bb:00:00:00:00:01", "REBOOT", sender="alice")
    assert refused.value.code == "not_commandable"
