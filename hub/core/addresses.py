"""Bind addresses, for the plugins that listen (the embedded broker, the HTTP server): no I/O, so it is the core's."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; a host name might resolve anywhere, so it is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """The host part of a URL that reaches, from this machine, a server bound to ``host``.

    Wildcard binds become loopback (0.0.0.0 → 127.0.0.1, :: → [::1]); IPv6 addresses get brackets.
    """
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
