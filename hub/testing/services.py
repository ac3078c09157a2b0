"""Real services in tests: skip when one is missing, or fail when ``HUB_REQUIRE_SERVICES=1`` (what CI sets).

A test that needs PostgreSQL, a broker or a browser runs against the real thing.
On a developer's machine without it the test is skipped with the reason; in CI a
missing service must turn the run red, never green by skipping.
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

REQUIRE_ENV = "HUB_REQUIRE_SERVICES"


def services_required() -> bool:
    """True when missing services must fail tests instead of skipping them."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the test (or the module, at import) for a missing service; fail it under ``HUB_REQUIRE_SERVICES=1``."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 requires it)", pytrace=False)
    pytest.skip(f"{reason}; set {REQUIRE_ENV}=1 to make this fail", allow_module_level=True)


def require_service(url: str, what: str) -> str:
    """Return ``url`` if its host:port accepts TCP connections; otherwise :func:`unavailable`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        with socket.create_connection((host, port or 0), timeout=2):
            return url
    except OSError as err:
        unavailable(f"{what} not reachable at {host}:{port} ({err})")
