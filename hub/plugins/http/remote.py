"""Which address a request really comes from, for throttling and bans.

``X-Forwarded-For`` is believed only when the peer is a configured trusted
proxy, and then only back to the first address that is not itself trusted:
anything further left was written by the client and could be forged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

REMOTE_KEY: web.RequestKey[str] = web.RequestKey("hub_remote", str)
"""Request key holding the client address (computed once per request)."""


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def client_address(request: web.Request, trusted_proxies: Sequence[Network]) -> str:
    """The client's address as a string (``"unknown"`` when the peer has none, e.g. a Unix socket)."""
    cached = request.get(REMOTE_KEY)
    if cached is not None:
        return cached
    peer = _parse(request.remote or "")
    result = str(peer) if peer is not None else "unknown"
    if peer is not None and trusted_proxies and _trusted(peer, trusted_proxies):
        hops = [hop for value in request.headers.getall("X-Forwarded-For", ()) for hop in value.split(",")]
        for hop in reversed(hops):
            address = _parse(hop)
            if address is None:
                break
            result = str(address)
            if not _trusted(address, trusted_proxies):
                break
    request[REMOTE_KEY] = result
    return result
