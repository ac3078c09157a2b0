"""A free loopback TCP port, for servers a test starts itself (a hub's HTTP API, an embedded or private broker)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The port is released before it is returned, so another process could take it
    in between; on a test machine that is rare enough, and the server that binds it
    fails loudly if it happens.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
