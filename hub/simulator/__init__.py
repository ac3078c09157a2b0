"""Simulated ESP32 nodes speaking the JSON contract over real MQTT connections: product code of the hub.

``hub simulate`` and ``hub run --demo N`` (the esp32_node plugin) run them against a broker, and the test kit
re-exports them (``from hub.testing import SimulatedNode, …``) as the peer a plugin's tests talk to.  They live
here, beside the core rather than in it (they speak MQTT through gmqtt, which the core never imports) and outside
the test kit (product code never imports ``hub.testing``), so both sides can use one simulator.

* :class:`SimulatedNode` — one board: Last Will, retained birth, drifting telemetry, power loss, reboots.
* :class:`Fleet` — N nodes against one broker (``Fleet(url, n).run(duration)``), with shared :class:`FleetStats`.
* :class:`OtaBehaviour` — which share of FIRMWARE_UPDATE attempts fail, and how.
* :func:`node_macs`, :class:`BrokerAddress`, :data:`SIMULATED_FIRMWARE_VERSION`.
"""

from __future__ import annotations

from .commands import OtaBehaviour
from .node import SIMULATED_FIRMWARE_VERSION, BrokerAddress, Fleet, FleetStats, SimulatedNode, node_macs

__all__ = [
    "SIMULATED_FIRMWARE_VERSION",
    "BrokerAddress",
    "Fleet",
    "FleetStats",
    "OtaBehaviour",
    "SimulatedNode",
    "node_macs",
]
