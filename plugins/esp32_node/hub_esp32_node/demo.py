"""``hub run --demo N``: a lively simulated fleet inside the hub process.

The nodes connect to whatever broker the hub itself uses
(``hub.data[DATA_BROKER_URL]``, set by the broker or mqtt plugin) and report
every few seconds; now and then one of them loses power (socket dropped, the
broker publishes its Last Will, presence marks it offline) and boots again a
little later, so the log shows the whole life cycle: registration, telemetry,
offline, online.  The fleet's seed is fixed (``esp32_node: demo: seed:``), so
restarting the demo brings back the same nodes instead of registering new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from hub import DATA_BROKER_URL, EVENT_AVAILABILITY_REPORTED, AvailabilityReportedData, Event, HubKey, normalize_mac
from hub.simulator import Fleet

from .config import SECTION

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

DEMO_DATA_KEY: HubKey[tuple[Fleet, asyncio.Task[None]]] = HubKey("esp32_node.demo")
"""Where this plugin keeps its running demo (the fleet and its task) in ``hub.data`` (private to the plugin)."""
STOP_TIMEOUT = 10.0
OFFLINE_GRACE = 3.0
"""Seconds to wait, at stop, for the hub to receive the demo nodes' ``offline``."""
PROGRESS_EVERY = 30.0


def start_demo(hub: Hub, nodes: int) -> None:
    """Start ``nodes`` simulated nodes as one background task of the hub."""
    url = hub.data.get(DATA_BROKER_URL)
    if not url:
        _LOGGER.error(
            "Cannot start the demo: no MQTT broker is configured or running (nothing set %s)", DATA_BROKER_URL
        )
        return
    options = hub.config[SECTION]["demo"]
    interval, every, downtime = options["interval"], options["power_loss_every"], options["downtime"]
    fleet = Fleet(
        url,
        nodes,
        interval=interval,
        seed=options["seed"],
        # Each node's chance per report, so that the whole fleet loses one node about every `every` seconds.
        outage_chance=min(0.5, interval / (every * nodes)) if every else 0.0,
        outage_seconds=(downtime * 0.5, downtime * 1.5),
    )
    task = hub.create_task(_run(fleet), name="esp32_node demo fleet")
    hub.data[DEMO_DATA_KEY] = (fleet, task)
    _LOGGER.info(
        "Demo: %d simulated ESP32 nodes reporting every %g s%s",
        nodes,
        interval,
        f"; one loses power about every {every:g} s" if every else "",
    )


async def stop_demo(hub: Hub) -> None:
    """Shut the demo nodes down gracefully while the broker is still up, and let the hub hear them go.

    Each node publishes ``offline`` before it disconnects; waiting (briefly) until the hub
    has received those keeps the log and the stored status true: the nodes went offline
    because their simulator stopped.
    """
    running = hub.data.pop(DEMO_DATA_KEY, None)
    if running is None:
        return
    fleet, task = running
    pending = {normalize_mac(node.mac) for node in fleet.nodes if node.connected}
    all_offline = asyncio.Event()

    def heard(event: Event[AvailabilityReportedData]) -> None:
        if not event.data["online"]:
            pending.discard(event.data["node_id"])
            if not pending:
                all_offline.set()

    unlisten = hub.bus.listen(EVENT_AVAILABILITY_REPORTED, heard)
    try:
        fleet.stop()
        await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        if pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_offline.wait(), OFFLINE_GRACE)
    finally:
        unlisten()


async def _run(fleet: Fleet) -> None:
    """The fleet, plus a progress line now and then so the log shows telemetry flowing."""
    reporter = asyncio.get_running_loop().create_task(_report(fleet), name="esp32_node demo progress")
    try:
        await fleet.run()
    finally:
        reporter.cancel()


async def _report(fleet: Fleet) -> None:
    sent = 0
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        _LOGGER.info(
            "Demo: %d/%d simulated nodes connected, %d reports sent in the last %.0f s",
            fleet.connected(),
            len(fleet.nodes),
            fleet.stats.sent - sent,
            PROGRESS_EVERY,
        )
        sent = fleet.stats.sent
