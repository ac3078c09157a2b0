"""How a simulated node handles FIRMWARE_UPDATE, and the failures it can be told to have (OtaBehaviour).

The node runs against the real Mosquitto; its firmware comes from a small aiohttp server of the test's own (a file
response, so ranges work as on the hub), and its answers are read on its ack topic by an independent subscriber.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from esp32_testing import Observer

from hub.testing import (
    SIMULATED_FIRMWARE_VERSION,
    BrokerAddress,
    FleetStats,
    OtaBehaviour,
    SimulatedNode,
    node_macs,
    wait_until,
)

pytestmark = pytest.mark.mosquitto

IMAGE = random.Random(7).randbytes(100_000)


@pytest.fixture
async def firmware_url(tmp_path: Path) -> AsyncIterator[str]:
    """A URL serving IMAGE (ranges included), and nothing else."""
    path = tmp_path / "app.bin"
    path.write_bytes(IMAGE)

    async def serve(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_get("/app.bin", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/app.bin"
    await runner.cleanup()


async def update(node: SimulatedNode, observer: Observer, url: str, **params: object) -> dict:
    """Send FIRMWARE_UPDATE to the node and return its final answer (``ok``/``error``) from the ack topic."""
    message_id = uuid.uuid4().hex
    body = {"url": url, "version": "9.9.9", "sha256": hashlib.sha256(IMAGE).hexdigest(), "size": len(IMAGE), **params}
    command = {"message_id": message_id, "action": "FIRMWARE_UPDATE", "params": body}
    node.commands.on_message(node.commands_topic, orjson.dumps(command))

    def final() -> dict | None:
        answers = [orjson.loads(p) for p in observer.of(node.ack_topic)]
        done = [a for a in answers if a["message_id"] == message_id and a["status"] != "received"]
        return done[0] if done else None

    return await wait_until(final, message="the node's answer")


async def booted_node(observer: Observer, behaviour: OtaBehaviour) -> SimulatedNode:
    mac = node_macs(random.randrange(2**32), 1)[0]
    node = SimulatedNode(mac, BrokerAddress.from_url(observer.url), FleetStats(), ota_behaviour=behaviour)
    observer.watch(node.topic_mac)
    assert await node.power_on()
    return node


def test_shares_are_checked_and_drawn() -> None:
    with pytest.raises(ValueError):
        OtaBehaviour(fail=0.7, rollback=0.5)
    with pytest.raises(ValueError):
        OtaBehaviour(offline=-0.1)
    rng = random.Random(3)
    fates = [OtaBehaviour(fail=0.25, rollback=0.25).draw(rng) for _ in range(4000)]
    assert abs(fates.count("fail") / 4000 - 0.25) < 0.03 and abs(fates.count("rollback") / 4000 - 0.25) < 0.03
    assert set(fates) == {"fail", "rollback", "works"}
    assert {OtaBehaviour().draw(rng) for _ in range(100)} == {"works"}


async def test_an_update_that_works_reboots_into_the_new_version(observer: Observer, firmware_url: str) -> None:
    node = await booted_node(observer, OtaBehaviour(reboot_downtime=0.05))
    try:
        assert (await update(node, observer, firmware_url))["status"] == "ok"
        await wait_until(lambda: node.firmware_version == "9.9.9" and node.connected, message="rebooted on 9.9.9")
        # It reports at once after the boot, with the version it now runs.
        await wait_until(
            lambda: any(orjson.loads(p)["firmware_version"] == "9.9.9" for p in observer.of(node.data_topic)),
            message="a report on 9.9.9",
        )
        assert node.reboots == 1
        bad = await update(node, observer, firmware_url, sha256="0" * 64)
        assert bad == {"message_id": bad["message_id"], "status": "error", "detail": "sha256 mismatch"}
    finally:
        await node.stop()


async def test_a_failing_update_keeps_the_old_firmware(observer: Observer, firmware_url: str) -> None:
    node = await booted_node(observer, OtaBehaviour(fail=1.0))
    try:
        answer = await update(node, observer, firmware_url)
        assert answer["status"] == "error" and answer["detail"] == "flash write failed"
        assert node.firmware_version == SIMULATED_FIRMWARE_VERSION and node.reboots == 0
    finally:
        await node.stop()


async def test_a_rollback_answers_ok_and_comes_back_on_the_old_firmware(observer: Observer, firmware_url: str) -> None:
    node = await booted_node(observer, OtaBehaviour(rollback=1.0, reboot_downtime=0.05))
    try:
        assert (await update(node, observer, firmware_url))["status"] == "ok"
        await wait_until(lambda: node.reboots == 1 and node.connected, message="rebooted")
        assert node.firmware_version == SIMULATED_FIRMWARE_VERSION
    finally:
        await node.stop()


async def test_an_interrupted_download_is_resumed_with_a_range_request(observer: Observer, firmware_url: str) -> None:
    node = await booted_node(observer, OtaBehaviour(interrupt=1.0, reboot_downtime=0.05))
    try:
        assert (await update(node, observer, firmware_url))["status"] == "ok"  # the sha256 of both halves matched
        assert node.commands.resumed_downloads == 1
        await wait_until(lambda: node.firmware_version == "9.9.9", message="rebooted on 9.9.9")
    finally:
        await node.stop()


async def test_power_lost_mid_download_leaves_no_answer_and_the_will(observer: Observer, firmware_url: str) -> None:
    node = await booted_node(observer, OtaBehaviour(offline=1.0, reboot_downtime=0.05))
    try:
        message_id = uuid.uuid4().hex
        params = {"url": firmware_url, "version": "9.9.9", "size": len(IMAGE)}
        node.commands.on_message(
            node.commands_topic, orjson.dumps({"message_id": message_id, "action": "FIRMWARE_UPDATE", "params": params})
        )
        # The broker publishes the Will, the node boots the old firmware, says online and reports at once.
        await wait_until(
            lambda: observer.of(node.status_topic)[-2:] == [b"offline", b"online"], message="offline, online"
        )
        await wait_until(lambda: len(observer.of(node.data_topic)) >= 1, message="a report after the boot")
        assert orjson.loads(observer.of(node.data_topic)[-1])["firmware_version"] == SIMULATED_FIRMWARE_VERSION
        answers = [orjson.loads(p) for p in observer.of(node.ack_topic)]
        assert [a["status"] for a in answers if a["message_id"] == message_id] == ["received"]
    finally:
        await node.stop()
