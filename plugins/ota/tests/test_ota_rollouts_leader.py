"""Two hub processes serving the API on one PostgreSQL database: a rollout runs in exactly one of them.

Both hubs hear the same simulated fleet (a private Mosquitto) and keep their images in one firmware directory, as
API instances on shared storage would. The first to start holds the OTA lock and drives the rollouts; the other
refuses to start or steer one (503) and sends no command. When the driving hub stops mid-rollout, the other takes
the lock over, takes the rollout back from the database and completes it: every node is updated, and only a node
caught mid-update by the stop may have been told twice.
"""

from __future__ import annotations

import pytest
from hub_ota.keys import DATA_OTA
from ota_fleet import NEW, RolloutSetup
from ota_testing import assert_error
from test_ota_rollouts import updates_executed

from hub.testing import PrivateMosquitto, free_port, wait_until

pytestmark = pytest.mark.mosquitto

NODES = 20


def leading(setup: RolloutSetup) -> bool:
    assert setup.hub is not None
    return setup.hub.metrics.registry.get_sample_value("hub_ota_rollouts_leader") == 1


async def test_one_process_drives_a_rollout_and_another_takes_over_when_it_stops(
    hub_postgres_url, hub_factory, tmp_path
):
    shared = {"firmware_dir": str(tmp_path / "firmware")}
    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        first = RolloutSetup(broker, hub_factory, hub_postgres_url, tmp_path / "a", free_port(), shared)
        second = RolloutSetup(broker, hub_factory, hub_postgres_url, tmp_path / "b", free_port(), shared)
        try:
            await first.start_hub()
            await second.start_hub()
            assert leading(first) and not leading(second)
            assert first.hub.data[DATA_OTA].engine.running and not second.hub.data[DATA_OTA].engine.running
            await first.start_fleet(NODES)
            await wait_until(lambda: all(second.hub.registry.get(n.mac.lower()) for n in first.fleet.nodes))
            await first.upload()
            body = {"firmware": NEW, "target": {"not_version": NEW}, "rate": 5, "node_timeout": 15, "retry_delay": 0}
            status, refused = await second.client.call("POST", "/api/ota/rollouts", json=body)
            assert_error(status, refused, 503, "rollouts_unavailable")

            created = await first.create(**body)
            status, action = await second.client.call("POST", f"/api/ota/rollouts/{created['id']}/pause")
            assert_error(status, action, 503, "rollouts_unavailable")
            await first.wait_for(created["id"], lambda r: r["counts"]["succeeded"] >= 5, "5 nodes updated")
            assert second.hub.data[DATA_OTA].engine.runs == {}  # it drives nothing
            assert not any(
                c.action == "FIRMWARE_UPDATE"
                for n in first.fleet.nodes
                for c in second.hub.commands.pending(n.mac.lower())
            )

            stopped = first.hub
            await stopped.async_stop()  # writes where the rollout stands, then releases the lock
            at_stop = stopped.data[DATA_OTA].engine.runs[created["id"]].rollout.nodes
            in_flight_at_stop = {
                node_id for node_id, node in at_stop.items() if node.status in ("sending", "installing")
            }
            first.hub = None  # closed already

            await wait_until(lambda: leading(second), timeout=30, message="the second hub took the OTA lock")
            done = await second.wait_for(
                created["id"], lambda r: r["status"] == "completed", "the rollout completed", timeout=90
            )
            assert done["counts"]["succeeded"] == NODES, [n for n in done["nodes"] if n["status"] != "succeeded"]
            executed = updates_executed(first)  # the fleet's own count of FIRMWARE_UPDATE commands it executed
            assert all(count >= 1 for count in executed.values())
            assert {mac for mac, count in executed.items() if count > 1} <= in_flight_at_stop
        finally:
            await second.close()
            await first.close()
