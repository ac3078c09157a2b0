"""``hub command NODE ACTION [key=value …]``: send a command through the running hub's API and follow it.

It is an API client like any other (token and address: :mod:`.api_client`).
Each status the command reaches is printed as it happens; the exit code is 0
when the node reports success, 1 for any other verdict or an error, so scripts
can rely on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import aiohttp

from .api_client import ClientProblem, add_client_arguments, api_error, fail, hub_url, session

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


async def _command(args: argparse.Namespace) -> int:
    try:
        params = parse_params(args.params)
        url = hub_url(args)
        async with session(args, timeout=POLL_WAIT + 30) as http:
            body = {"action": args.action, "params": params, "priority": args.priority, "offline_policy": args.offline}
            if args.ttl is not None:
                body["ttl"] = args.ttl
            try:
                async with http.post(f"{url}/api/nodes/{args.node}/commands", json=body) as response:
                    answer = await response.json(content_type=None)
                    if response.status != 201:
                        raise api_error(response.status, answer)
                return await _follow(http, url, answer, args.json)
            except aiohttp.ClientError as err:
                raise ClientProblem(f"cannot reach the hub at {url}: {err}") from None
    except (ValueError, ClientProblem) as err:
        return fail(err)


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
    add_client_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the final command as JSON")


def register_command(register: Any) -> None:
    """Add ``hub command`` (see the ``hub_cli_commands`` hook)."""
    register("command", _command, "send a command to a node and wait for its outcome", _arguments)
