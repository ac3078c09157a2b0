"""The test kit for plugin authors: pytest fixtures (:mod:`.pytest_plugin`, loaded by the ``pytest11`` entry point)
and the helpers below.  Documented in docs/plugin-api.md, "Testing a plugin".  Product code never imports this.

The simulated ESP32 nodes (``SimulatedNode``, ``Fleet``, …) are re-exported from :mod:`hub.simulator`, where they
live because ``hub simulate`` and ``hub run --demo`` (product code) run them too.  They are imported on first use
(:func:`__getattr__`), so loading the kit (every pytest run) does not import gmqtt and aiohttp.

Importing it is cheap: database drivers, MQTT and HTTP libraries and the http plugin are imported only by
the fixture or helper that needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .auth import TEST_PASSWORD, UserToken, create_user_and_token
from .clock import FakeClock
from .hubs import make_hub
from .mosquitto import PrivateMosquitto
from .ports import free_port
from .process import HubProcess
from .services import require_service, services_required, unavailable
from .waiting import wait_until

if TYPE_CHECKING:
    from hub.simulator import (
        SIMULATED_FIRMWARE_VERSION,
        BrokerAddress,
        Fleet,
        FleetStats,
        OtaBehaviour,
        SimulatedNode,
        node_macs,
    )

_SIMULATOR = frozenset(
    {"SIMULATED_FIRMWARE_VERSION", "BrokerAddress", "Fleet", "FleetStats", "OtaBehaviour", "SimulatedNode", "node_macs"}
)

__all__ = [
    "SIMULATED_FIRMWARE_VERSION",
    "TEST_PASSWORD",
    "BrokerAddress",
    "FakeClock",
    "Fleet",
    "FleetStats",
    "HubProcess",
    "OtaBehaviour",
    "PrivateMosquitto",
    "SimulatedNode",
    "UserToken",
    "create_user_and_token",
    "free_port",
    "make_hub",
    "node_macs",
    "require_service",
    "services_required",
    "unavailable",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    """The simulator's names, imported from :mod:`hub.simulator` when a test first asks for one."""
    if name in _SIMULATOR:
        import hub.simulator

        return getattr(hub.simulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
