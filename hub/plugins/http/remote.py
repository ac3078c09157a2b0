"""Which address a request really comes from, for throttling, bans and the audit trail.

``X-Forwarded-For`` is believed only when the peer is a configured trusted
proxy (``http: trusted_proxies``), and then only back to the first address
that is not itself trusted: anything further left was written by the client
and could be forged.  Several headers count as one list, in order.

Proxies write hops in more than one way, and every one of them is read:
``203.0.113.7``, ``203.0.113.7:51234``, ``2001:db8::1``, ``[2001:db8::1]``,
``[2001:db8::1]:443``, and IPv4-mapped IPv6 (``::ffff:203.0.113.7``, what a
dual-stack socket reports) as the IPv4 address.  A hop that still does not
parse (``unknown``, an RFC 7239 obfuscated name) ends the walk: the client is
then the last trusted proxy's view of it, ``unknown via <proxy>``, so such
clients share a key with each other, never with the proxy itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

REMOTE_KEY: web.RequestKey[str] = web.RequestKey("hub_remote", str)
"""Request key holding the client address (computed once per request)."""


def parse_hop(text: str) -> Address | None:
    """One address as a proxy or socket writes it (port and brackets allowed), or None."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest[1:].isdigit()) or (rest and rest[0] != ":"):
            return None
        text = inside
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def forwarded_client(peer: Address, hops: Sequence[str], trusted_proxies: Sequence[Network]) -> str:
    """The client address for a request from ``peer`` carrying X-Forwarded-For ``hops`` (leftmost first)."""
    result = str(peer)
    if not _trusted(peer, trusted_proxies):
        return result
    for hop in reversed(hops):
        address = parse_hop(hop)
        if address is None:
            return f"unknown via {result}"
        result = str(address)
        if not _trusted(address, trusted_proxies):
            break
    return result


def client_address(request: web.Request, trusted_proxies: Sequence[Network]) -> str:
    """The client's address as a string (``"unknown"`` when the peer has none, e.g. a Unix socket)."""
    cached = request.get(REMOTE_KEY)
    if cached is not None:
        return cached
    peer = parse_hop(request.remote or "")
    if peer is None:
        result = "unknown"
    elif trusted_proxies:
        hops = [
            hop for value in request.headers.getall("X-Forwarded-For", ()) for hop in value.split(",") if hop.strip()
        ]
        result = forwarded_client(peer, hops, trusted_proxies)
    else:
        result = str(peer)
    request[REMOTE_KEY] = result
    return result
