"""The ``http:`` section of config.yaml.

Defaults are safe ones: loopback only, no TLS needed there, no users and no
credentials of any kind until the owner creates them (``hub user create`` or
the one-time onboarding link).  Durations are in seconds.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import voluptuous as vol

SECTION = "http"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8124
"""Not Home Assistant's 8123, so both can run on one host."""


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError as err:
        raise vol.Invalid(f"not an IP address or network: {value!r}") from err


def port(value: Any) -> int:
    """A TCP port, 0 meaning "any free one" (what tests use)."""
    number = vol.Coerce(int)(value)
    if not 0 <= number <= 65535:
        raise vol.Invalid("must be between 0 and 65535")
    return number


def _positive(minimum: float) -> vol.All:
    return vol.All(vol.Coerce(float), vol.Range(min=minimum))


CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default=DEFAULT_HOST): vol.All(str, vol.Length(min=1)),
        vol.Optional("port", default=DEFAULT_PORT): port,
        vol.Inclusive("ssl_certificate", "tls", msg="ssl_certificate and ssl_key go together"): vol.IsFile(),
        vol.Inclusive("ssl_key", "tls", msg="ssl_certificate and ssl_key go together"): vol.IsFile(),
        # Proxies whose X-Forwarded-For is believed when throttling and banning by address.
        vol.Optional("trusted_proxies", default=[]): [_network],
        vol.Optional("access_token_lifetime", default=1800): _positive(1),
        vol.Optional("refresh_token_lifetime", default=30 * 86400): _positive(60),
        # A session ends this long after its sign-in however often it is refreshed.
        vol.Optional("session_lifetime", default=90 * 86400): _positive(60),
        # Sessions one user may have; a new sign-in ends the least recently used beyond this.
        vol.Optional("max_sessions_per_user", default=30): vol.All(vol.Coerce(int), vol.Range(min=1)),
        vol.Optional("onboarding_link_lifetime", default=3600): _positive(1),
        # Failed sign-ins from one address before it is banned, and for how long.
        vol.Optional("login_attempts_threshold", default=5): vol.All(vol.Coerce(int), vol.Range(min=1)),
        vol.Optional("ban_time", default=900): _positive(1),
        # Password checks (argon2id) running at once, and waiting; beyond both a sign-in gets 429 at once.
        vol.Optional("password_checks", default=2): vol.All(vol.Coerce(int), vol.Range(min=1, max=64)),
        vol.Optional("password_check_queue", default=8): vol.All(vol.Coerce(int), vol.Range(min=0, max=1000)),
        # A connection must send a request's headers within this long of connecting or of its last answer.
        vol.Optional("idle_timeout", default=20): _positive(1),
        # Messages, and bytes, a WebSocket client may have waiting before it is judged too slow and disconnected.
        vol.Optional("websocket_queue_size", default=2048): vol.All(vol.Coerce(int), vol.Range(min=16)),
        vol.Optional("websocket_queue_bytes", default=8 * 2**20): vol.All(vol.Coerce(int), vol.Range(min=2**20)),
        # Subscriptions (subscribe_events) one WebSocket connection may hold at once.
        vol.Optional("websocket_max_subscriptions", default=256): vol.All(vol.Coerce(int), vol.Range(min=1)),
    }
)
