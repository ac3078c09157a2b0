"""The test kit for plugin authors: pytest fixtures (:mod:`.pytest_plugin`, loaded by the ``pytest11`` entry point)
and the helpers below.  Documented in docs/plugin-api.md, "Testing a plugin".  Product code never imports this.

Importing it is cheap: database drivers and the http plugin are imported only by
the fixture or helper that needs them.
"""

from __future__ import annotations

from .auth import TEST_PASSWORD, UserToken, create_user_and_token
from .clock import FakeClock
from .hubs import make_hub
from .mosquitto import PrivateMosquitto
from .ports import free_port
from .services import require_service, services_required, unavailable
from .waiting import wait_until

__all__ = [
    "TEST_PASSWORD",
    "FakeClock",
    "PrivateMosquitto",
    "UserToken",
    "create_user_and_token",
    "free_port",
    "make_hub",
    "require_service",
    "services_required",
    "unavailable",
    "wait_until",
]
