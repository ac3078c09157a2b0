"""How the command line talks to a running hub's API: where it is, which token to send, what an error says.

``hub command`` and ``hub node set`` are API clients like any other: they need
a long-lived token (``--token`` or ``HUB_TOKEN``; make one with ``hub token
create --name cli``) and find the hub at the address config.yaml's ``http:``
section gives (or ``--url``).  This module is that shared part, so every such
command takes the same options and reports problems the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import aiohttp

from hub import ROLE_CLI, build_hub, url_host

from .config import DEFAULT_HOST

TOKEN_ENV = "HUB_TOKEN"


class ClientProblem(Exception):
    """Something the user must fix (no token, an unreachable hub, an API error); the message says what."""


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """``--token`` and ``--url``."""
    parser.add_argument("--token", help=f"an API token (default: ${TOKEN_ENV})")
    parser.add_argument("--url", help="the hub's address (default: from config.yaml's http section)")


def hub_url(args: argparse.Namespace) -> str:
    """``--url``, or the address the hub of ``-c config.yaml`` serves its API on."""
    if args.url:
        return args.url.rstrip("/")
    config = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins).config.get("http", {})
    scheme = "https" if config.get("ssl_certificate") else "http"
    host = config.get("host", DEFAULT_HOST)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"{scheme}://{url_host(host)}:{config.get('port')}"


def session(args: argparse.Namespace, timeout: float = 30.0) -> aiohttp.ClientSession:
    """A client session sending ``--token`` (or ``$HUB_TOKEN``); ClientProblem when there is none."""
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ClientProblem(f"give --token or set {TOKEN_ENV} (create one with `hub token create --name cli`)")
    return aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {token}"}, timeout=aiohttp.ClientTimeout(total=timeout)
    )


def api_error(status: int, answer: Any) -> ClientProblem:
    """The API's error message (``{"error": {"message"}}``), or the HTTP status when there is none."""
    message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
    return ClientProblem(message or f"HTTP {status}")


def fail(message: object) -> int:
    """Print ``error: …`` on stderr; exit code 1."""
    print(f"error: {message}", file=sys.stderr)
    return 1
