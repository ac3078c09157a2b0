"""Staged rollouts over 50 simulated ESP32 nodes on a private Mosquitto, on SQLite and on PostgreSQL.

The nodes download their image from the hub with the link in their FIRMWARE_UPDATE command, verify it, reboot
and report the version they run; some are told to fail in the ways real fleets do (the test kit's
OtaBehaviour). Each test waits on the rollout's own progress (``GET /api/ota/rollouts/{id}``), never on time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from hub_ota.events import EVENT_OTA_ROLLOUT_UPDATED
from hub_ota.keys import DATA_OTA
from ota_fleet import NEW, OLD, RolloutSetup
from ota_testing import assert_error

from hub import Event
from hub.testing import OtaBehaviour, wait_until

pytestmark = pytest.mark.mosquitto

NODES = 50
FAST = {"rate": 50, "node_timeout": 20, "retry_delay": 0}


def by_position(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted((n for n in rollout["nodes"] if n["position"] is not None), key=lambda n: n["position"])


def updates_executed(setup: RolloutSetup) -> Counter[str]:
    assert setup.fleet is not None
    return Counter({node.mac.lower(): node.commands.executed.count("FIRMWARE_UPDATE") for node in setup.fleet.nodes})


async def test_a_staged_rollout_updates_every_node_stage_by_stage(rollout_setup: RolloutSetup) -> None:
    setup = rollout_setup
    client = await setup.start_hub()
    events: list[Event] = []
    client.hub.bus.listen(EVENT_OTA_ROLLOUT_UPDATED, events.append)
    await setup.start_fleet(NODES, behaviour=OtaBehaviour(interrupt=0.2))  # some downloads resume with Range
    firmware = await setup.upload()
    created = await setup.create(
        firmware=NEW, target={"not_version": NEW}, stages=[{"nodes": 1}, 10, 50, 100], name="spring", **FAST
    )
    assert created["status"] == "running" and created["firmware"] == firmware["sha256"]
    assert created["stage_sizes"] == [1, 5, 25, 50] and created["created_by"] == "owner"

    done = await setup.wait_for(created["id"], lambda r: r["status"] == "completed", "the rollout completed")

    assert done["counts"]["succeeded"] == NODES and done["counts"]["failed"] == 0, [
        (n["node_id"], n["detail"]) for n in done["nodes"] if n["status"] != "succeeded"
    ]
    assert all(client.hub.registry.get(node["node_id"]).firmware_version == NEW for node in done["nodes"])
    assert all(node.firmware_version == NEW for node in setup.fleet.nodes)
    assert set(updates_executed(setup).values()) == {1}  # each node updated once, resumed downloads included
    assert sum(node.commands.resumed_downloads for node in setup.fleet.nodes) > 0  # resumed with Range requests
    # Stage by stage: no node of a stage started before every node of the previous one had finished.
    nodes = by_position(done)
    for end in done["stage_sizes"][:-1]:
        assert max(n["finished_at"] for n in nodes[:end]) <= min(n["started_at"] for n in nodes[end:])
    assert [entry["action"] for entry in done["history"]] == ["created", "stage", "stage", "stage", "completed"]
    assert all(n["from_version"] == OLD and n["attempts"] == 1 and n["detail"] == f"running {NEW}" for n in nodes)
    # Progress was announced live, and the last event says what the API says.
    await wait_until(lambda: events and events[-1].data["rollout"]["status"] == "completed", message="the last event")
    assert {n["node_id"] for e in events for n in e.data["nodes"] if n["status"] == "succeeded"} == {
        n["node_id"] for n in nodes
    }
    status, listed = await client.call("GET", "/api/ota/rollouts")
    assert status == 200 and [r["id"] for r in listed["rollouts"]] == [created["id"]]
    assert listed["rollouts"][0]["counts"]["succeeded"] == NODES and listed["rollouts"][0]["stage_sizes"] == [
        1,
        5,
        25,
        50,
    ]
    status, body = await client.call("POST", f"/api/ota/rollouts/{created['id']}/pause")
    assert_error(status, body, 409, "invalid_transition")


async def test_rollbacks_and_power_losses_fail_after_their_retries_and_the_rest_completes(
    rollout_setup: RolloutSetup,
) -> None:
    setup = rollout_setup
    await setup.start_hub()
    fleet = await setup.start_fleet(NODES)
    rollback, offline, refusing = fleet.nodes[0], fleet.nodes[1], fleet.nodes[2]
    rollback.ota_behaviour = OtaBehaviour(rollback=1.0)
    offline.ota_behaviour = OtaBehaviour(offline=1.0)
    refusing.ota_behaviour = OtaBehaviour(fail=1.0)
    await setup.upload()
    # At most 3 of the first 10 judged nodes can fail (30%): under the threshold, whatever the order.
    created = await setup.create(
        firmware=NEW,
        target={"not_version": NEW},
        stages=[10, 50, 100],
        retries=1,
        max_failure_ratio=0.35,
        min_nodes_before_judging=10,
        **FAST,
    )
    done = await setup.wait_for(created["id"], lambda r: r["status"] == "completed", "the rollout completed")

    assert done["counts"]["succeeded"] == NODES - 3 and done["counts"]["failed"] == 3
    progress = {n["node_id"]: n for n in done["nodes"]}
    for node, reason in ((rollback, "rolled back"), (offline, "rolled back"), (refusing, "flash write failed")):
        entry = progress[node.mac.lower()]
        assert entry["status"] == "failed" and entry["attempts"] == 2, entry
        assert reason in entry["detail"], entry
        assert node.firmware_version == OLD
    assert updates_executed(setup)[rollback.mac.lower()] == 2


async def test_a_node_that_reports_the_new_version_after_its_attempt_timed_out_has_succeeded(
    rollout_setup: RolloutSetup,
) -> None:
    """Its attempt timed out while it rebooted; it came back on the new version before its retry was due. That is
    this rollout's update arriving late, not a node that was already on the version (skipped)."""
    setup = rollout_setup
    await setup.start_hub()
    await setup.start_fleet(3, behaviour=OtaBehaviour(reboot_downtime=3.0))
    await setup.upload()
    created = await setup.create(
        firmware=NEW, target={"not_version": NEW}, rate=50, node_timeout=1, retries=1, retry_delay=6
    )
    done = await setup.wait_for(created["id"], lambda r: r["status"] == "completed", "the rollout completed")
    assert done["counts"]["succeeded"] == 3 and done["counts"]["skipped"] == 0, (done["counts"], done["nodes"])
    for entry in done["nodes"]:
        assert entry["status"] == "succeeded" and entry["attempts"] >= 1, entry
    assert all(node.firmware_version == NEW for node in setup.fleet.nodes)


async def test_progress_held_by_a_write_the_stop_cancelled_is_written_by_the_stop(
    rollout_setup: RolloutSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping cancels the periodic write of the rollout's progress, maybe in the middle of one: what that write
    held must go with the stop's own. Otherwise the next lock holder finds the rollout as it was before (here: still
    paused, where the owner had cancelled it) and carries on from there."""
    setup = rollout_setup
    await setup.start_hub()
    await setup.start_fleet(6, behaviour=OtaBehaviour(fail=1.0))
    await setup.upload()
    created = await setup.create(
        firmware=NEW, target={"not_version": NEW}, retries=0, max_failure_ratio=0.2, min_nodes_before_judging=2, **FAST
    )
    assert setup.hub is not None
    engine = setup.hub.data[DATA_OTA].engine

    async def paused_and_written() -> bool:
        stored = await engine.store.get(created["id"])
        return stored is not None and stored.status == "paused" and not engine.runs[created["id"]].dirty

    await wait_until(paused_and_written, timeout=45, message="the rollout paused itself and was written")
    held = asyncio.Event()

    async def hold(rollout: Any, nodes: Any) -> None:  # the database answers slowly: a write in progress at the stop
        held.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(engine.store, "save", hold)
    assert engine.act(created["id"], "cancel", "owner") is not None
    await asyncio.wait_for(held.wait(), 10)
    monkeypatch.undo()
    await engine.stop()
    stored = await engine.store.get(created["id"])
    assert stored is not None and stored.status == "cancelled", stored and stored.status
    assert all(node.status in ("failed", "cancelled") for node in stored.nodes.values())


async def test_failures_over_the_threshold_pause_the_rollout_before_the_next_stage(rollout_setup: RolloutSetup) -> None:
    setup = rollout_setup
    client = await setup.start_hub()
    await setup.start_fleet(NODES, behaviour=OtaBehaviour(fail=1.0))  # every update fails
    await setup.upload()
    created = await setup.create(
        firmware=NEW,
        target={"not_version": NEW},
        stages=[10, 50, 100],
        retries=0,
        max_failure_ratio=0.2,
        min_nodes_before_judging=3,
        **FAST,
    )
    assert created["stage_sizes"] == [5, 25, 50]
    paused = await setup.wait_for(
        created["id"],
        lambda r: r["status"] == "paused" and r["counts"]["sending"] + r["counts"]["installing"] == 0,
        "the rollout paused with nothing in flight",
    )
    assert paused["reason"].startswith("paused: ") and "more than 20%" in paused["reason"]
    assert paused["history"][-1]["action"] == "paused" and paused["history"][-1]["by"] == "ota"
    nodes = by_position(paused)
    assert all(n["status"] in ("failed", "pending") for n in nodes[:5])
    assert all(n["status"] == "pending" and n["attempts"] == 0 for n in nodes[5:])  # the next stage never began
    assert sum(updates_executed(setup).values()) <= 5
    assert all(node.firmware_version == OLD for node in setup.fleet.nodes)

    status, cancelled = await client.call("POST", f"/api/ota/rollouts/{created['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled" and cancelled["reason"] == "cancelled by owner"
    final = await setup.rollout(created["id"])
    assert final["counts"]["pending"] == 0 and final["counts"]["cancelled"] >= NODES - 5


async def test_an_abort_cancels_what_is_left(rollout_setup: RolloutSetup) -> None:
    setup = rollout_setup
    await setup.start_hub()
    await setup.start_fleet(10, behaviour=OtaBehaviour(fail=1.0))
    await setup.upload()
    created = await setup.create(
        firmware=NEW, target={"not_version": NEW}, retries=0, min_nodes_before_judging=2, on_failure="abort", rate=2
    )
    aborted = await setup.wait_for(created["id"], lambda r: r["status"] == "aborted", "the rollout aborted")
    assert aborted["reason"].startswith("aborted: ") and aborted["finished_at"] is not None
    assert aborted["counts"]["failed"] >= 2 and aborted["counts"]["pending"] == 0
    assert aborted["counts"]["failed"] + aborted["counts"]["cancelled"] == 10


async def test_pause_resume_and_the_rules_of_creation(rollout_setup: RolloutSetup) -> None:
    setup = rollout_setup
    client = await setup.start_hub()
    fleet = await setup.start_fleet(10)
    firmware = await setup.upload()
    some = [node.mac.lower() for node in fleet.nodes[:4]]
    created = await setup.create(firmware=firmware["sha256"], target={"nodes": some}, rate=0.5, node_timeout=20)
    status, paused = await client.call("POST", f"/api/ota/rollouts/{created['id']}/pause")
    assert status == 200 and paused["status"] == "paused" and paused["reason"] == "paused by owner"
    # A node is in one active rollout at a time; the image of an active rollout cannot be deleted.
    status, body = await client.call("POST", "/api/ota/rollouts", json={"firmware": NEW, "target": {"nodes": some[:1]}})
    assert_error(status, body, 409, "nodes_busy")
    status, body = await client.call("DELETE", f"/api/ota/firmware/{firmware['sha256']}")
    assert_error(status, body, 409, "firmware_in_use")
    status, resumed = await client.call("POST", f"/api/ota/rollouts/{created['id']}/resume")
    assert status == 200 and resumed["status"] == "running"
    done = await setup.wait_for(created["id"], lambda r: r["status"] == "completed", "the rollout completed")
    assert done["counts"]["succeeded"] == 4
    assert [e["action"] for e in done["history"]] == ["created", "paused", "resumed", "completed"]
    # Everyone is on it now: nothing to do.
    status, body = await client.call("POST", "/api/ota/rollouts", json={"firmware": NEW, "target": {"nodes": some}})
    assert_error(status, body, 409, "nothing_to_update")

    status, body = await client.call("POST", "/api/ota/rollouts", json={"firmware": NEW, "target": {"tags": ["none"]}})
    assert_error(status, body, 409, "empty_target")
    status, body = await client.call(
        "POST", "/api/ota/rollouts", json={"firmware": NEW, "target": {"nodes": ["24:6f:28:ff:ff:ff"]}}
    )
    assert_error(status, body, 404, "node_not_found")
    for bad, code in [
        ({"firmware": NEW, "target": {}}, "invalid_target"),
        ({"firmware": NEW, "target": {"area": 7}}, "invalid_target"),
        ({"firmware": NEW, "target": {"not_version": NEW}, "stages": [10, 50]}, "invalid_request"),
        ({"firmware": NEW, "target": {"not_version": NEW}, "rate": 0}, "invalid_request"),
        ({"firmware": NEW, "target": {"not_version": NEW}, "colour": "red"}, "invalid_request"),
    ]:
        status, body = await client.call("POST", "/api/ota/rollouts", json=bad)
        assert_error(status, body, 400, code)
    status, body = await client.call(
        "POST", "/api/ota/rollouts", json={"firmware": "9.9.9", "target": {"not_version": NEW}}
    )
    assert_error(status, body, 404, "firmware_not_found")
    status, body = await client.call("GET", "/api/ota/rollouts/nope")
    assert_error(status, body, 404, "rollout_not_found")


async def test_a_rollout_carries_on_after_a_hub_restart(rollout_setup: RolloutSetup) -> None:
    setup = rollout_setup
    await setup.start_hub()
    await setup.start_fleet(NODES)
    await setup.upload()
    created = await setup.create(firmware=NEW, target={"not_version": NEW}, rate=10, node_timeout=15, retry_delay=0)
    await setup.wait_for(created["id"], lambda r: r["counts"]["succeeded"] >= 10, "10 nodes updated")
    stopped = setup.hub
    await stopped.async_stop()
    at_stop = stopped.data[DATA_OTA].engine.runs[created["id"]].rollout.nodes  # as written at the stop
    in_flight_at_stop = {node_id for node_id, node in at_stop.items() if node.status in ("sending", "installing")}
    assert in_flight_at_stop and any(node.status == "pending" for node in at_stop.values())

    client = await setup.start_hub()  # the same database, data directory, broker and HTTP port
    resumed = await setup.rollout(created["id"])
    assert resumed["status"] == "running" and resumed["counts"]["succeeded"] >= 10
    done = await setup.wait_for(
        created["id"], lambda r: r["status"] == "completed", "the rollout completed", timeout=60
    )
    assert done["counts"]["succeeded"] == NODES
    assert all(node.firmware_version == NEW for node in setup.fleet.nodes)
    executed = updates_executed(setup)
    assert all(count >= 1 for count in executed.values())
    # Only a node caught mid-update by the stop may have needed a second attempt.
    assert {mac for mac, count in executed.items() if count > 1} <= in_flight_at_stop
    await wait_until(lambda: client.hub.registry.get(done["nodes"][0]["node_id"]).firmware_version == NEW)
