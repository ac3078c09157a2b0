"""``hub command NODE ACTION [key=value …]``: send a command through the running hub's API and follow it.

It is an API client like any other: it needs a long-lived token (``--token`` or
``HUB_TOKEN``; make one with ``hub token create --name cli``) and finds the hub
at the address config.yaml's ``http:`` section gives (or ``--url``).  Each
status the command reaches is printed as it happens; the exit code is 0 when
the node reports success, 1 for any other verdict or an error, so scripts can
rely on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import aiohttp

from hub import ROLE_CLI, build_hub, url_host

from .config import DEFAULT_HOST

TOKEN_ENV = "HUB_TOKEN"
POLL_WAIT = 5.0
"""Seconds each request waits for the verdict before the status is printed again."""


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``relay=3 state=true name=pump`` → ``{"relay": 3, "state": True, "name": "pump"}`` (JSON where it parses)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"parameters are key=value, not {pair!r}")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def _hub_url(args: argparse.Namespace) -> str:
    if args.url:
        return args.url.rstrip("/")
    config = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins).config.get("http", {})
    scheme = "https" if config.get("ssl_certificate") else "http"
    host = config.get("host", DEFAULT_HOST)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"{scheme}://{url_host(host)}:{config.get('port')}"


async def _command(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        print(
            f"error: give --token or set {TOKEN_ENV} (create one with `hub token create --name cli`)", file=sys.stderr
        )
        return 1
    try:
        params = parse_params(args.params)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    body = {"action": args.action, "params": params, "priority": args.priority, "offline_policy": args.offline}
    if args.ttl is not None:
        body["ttl"] = args.ttl
    url = _hub_url(args)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=POLL_WAIT + 30)) as http:
            async with http.post(f"{url}/api/nodes/{args.node}/commands", json=body) as response:
                answer = await response.json(content_type=None)
                if response.status != 201:
                    message = (answer or {}).get("error", {}).get("message", f"HTTP {response.status}")
                    print(f"error: {message}", file=sys.stderr)
                    return 1
            return await _follow(http, url, answer, args.json)
    except aiohttp.ClientError as err:
        print(f"error: cannot reach the hub at {url}: {err}", file=sys.stderr)
        return 1


async def _follow(http: aiohttp.ClientSession, url: str, command: dict[str, Any], as_json: bool) -> int:
    shown = 0
    started = time.monotonic()
    while True:
        history = command["history"]
        if not as_json:
            for step in history[shown:]:
                detail = f": {step['detail']}" if step.get("detail") else ""
                print(f"{time.monotonic() - started:6.2f} s  {step['status']}{detail}", flush=True)
        shown = len(history)
        if command["status"] in ("succeeded", "failed", "expired", "cancelled"):
            break
        async with http.get(f"{url}/api/commands/{command['id']}", params={"wait": str(POLL_WAIT)}) as response:
            if response.status != 200:
                print(f"error: HTTP {response.status} while following command {command['id']}", file=sys.stderr)
                return 1
            command = await response.json()
    if as_json:
        print(json.dumps(command, indent=2))
    else:
        print(f"command {command['id']} {command['status']}")
    return 0 if command["status"] == "succeeded" else 1


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", help="node id or MAC")
    parser.add_argument("action", help="e.g. REBOOT, STATUS_REQUEST (GET /api/actions lists them)")
    parser.add_argument("params", nargs="*", metavar="key=value", help="the action's parameters (values as JSON)")
    parser.add_argument("--priority", type=int, default=5, help="0-10 (default 5)")
    parser.add_argument("--ttl", type=float, help="seconds the command stays valid (default 300)")
    parser.add_argument("--offline", choices=("queue", "refuse"), default="queue", help="if the node is offline")
    parser.add_argument("--token", help=f"an API token (default: ${TOKEN_ENV})")
    parser.add_argument("--url", help="the hub's address (default: from config.yaml's http section)")
    parser.add_argument("--json", action="store_true", help="print the final command as JSON")


def register_command(register: Any) -> None:
    """Add ``hub command`` (see the ``hub_cli_commands`` hook)."""
    register("command", _command, "send a command to a node and wait for its outcome", _arguments)
