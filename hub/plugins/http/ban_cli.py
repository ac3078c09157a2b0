"""``hub ban list`` and ``hub ban lift ADDRESS``: the running hub's sign-in bans, through its API.

Bans live in the running hub's memory (a restart forgets them), so these are
API clients like ``hub node set`` (token and address: :mod:`.api_client`):
``GET /api/auth/bans`` and ``DELETE /api/auth/bans/{address}``, which the
audit trail records.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from .api_client import ClientProblem, add_client_arguments, api_error, fail, hub_url, session


async def _call(args: argparse.Namespace, method: str, path: str) -> tuple[int, Any]:
    url = hub_url(args)
    async with session(args) as http:
        try:
            async with http.request(method, f"{url}{path}") as response:
                return response.status, await response.json(content_type=None) if response.content_length else None
        except aiohttp.ClientError as err:
            raise ClientProblem(f"cannot reach the hub at {url}: {err}") from None


async def _ban_list(args: argparse.Namespace) -> int:
    try:
        status, answer = await _call(args, "GET", "/api/auth/bans")
        if status != 200:
            raise api_error(status, answer)
    except ClientProblem as err:
        return fail(err)
    bans = answer["bans"]
    if args.json:
        print(json.dumps(bans, indent=2))
        return 0
    for ban in bans:
        until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ban["until"]))
        print(f"{ban['address']:<40} until {until} ({int(ban['remaining_seconds'])} s left)")
    print(f"{len(bans)} banned address(es)")
    return 0


async def _ban_lift(args: argparse.Namespace) -> int:
    try:
        status, answer = await _call(args, "DELETE", f"/api/auth/bans/{quote(args.address, safe='')}")
        if status != 204:
            raise api_error(status, answer)
    except ClientProblem as err:
        return fail(err)
    print(f"Lifted the ban of {args.address}.")
    return 0


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    add_client_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _lift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", help="the banned address, as `hub ban list` shows it")
    add_client_arguments(parser)


def register_ban_commands(register: Any) -> None:
    """Add ``hub ban list`` and ``hub ban lift`` (see the ``hub_cli_commands`` hook)."""
    register("ban list", _ban_list, "list addresses banned from signing in on the running hub", _list_arguments)
    register("ban lift", _ban_lift, "lift the sign-in ban of an address on the running hub", _lift_arguments)
