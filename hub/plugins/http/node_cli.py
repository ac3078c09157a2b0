"""``hub node set`` and ``hub node list``: a node changed, or the fleet listed, through the running hub's API.

``hub node set NODE [--name N] [--area A | --no-area] [--tag T …] [--untag T …]``
is an API client (token and address: :mod:`.api_client`) sending one ``PATCH
/api/nodes/{id}``: tags are added and removed on the hub in one step
(``add_tags``/``remove_tags``), so two people tagging the same node at once do
not undo each other.  Prints the node as it is afterwards; exit code 0, or 1
with the API's message.

``hub node list [--status S] [--area A] [--tag T] [--json]`` reads the fleet
page by page (``GET /api/nodes?limit=1000``, gzipped, following ``next``) and
prints each page as it arrives: live statuses, no database to restore, and
never one huge answer however big the fleet.  ``hub nodes`` (the core's) reads
the database instead and works with the hub stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp

from .api_client import ClientProblem, add_client_arguments, api_error, fail, hub_url, session


def patch_body(args: argparse.Namespace) -> dict[str, Any]:
    """The PATCH body for the options given; ValueError when none was."""
    body: dict[str, Any] = {}
    if args.name is not None:
        body["name"] = args.name
    if args.description is not None:
        body["description"] = args.description
    if args.no_area:
        body["area"] = None
    elif args.area is not None:
        body["area"] = args.area
    if args.clear_tags:
        body["tags"] = args.tag
    else:
        if args.tag:
            body["add_tags"] = args.tag
        if args.untag:
            body["remove_tags"] = args.untag
    if not body:
        raise ValueError(
            "nothing to change: give --name, --description, --area, --no-area, --tag, --untag or --clear-tags"
        )
    return body


def describe(node: dict[str, Any]) -> str:
    """``24:6f:28:aa:00:01  Pump  area: greenhouse 2  tags: beta, relay-board``."""
    area = node.get("area") or "-"
    tags = ", ".join(node.get("tags") or []) or "-"
    return f"{node['node_id']}  {node['name']}  area: {area}  tags: {tags}"


async def _node_set(args: argparse.Namespace) -> int:
    try:
        body = patch_body(args)
        url = hub_url(args)
        async with session(args) as http:
            try:
                async with http.patch(f"{url}/api/nodes/{quote(args.node, safe=':')}", json=body) as response:
                    answer = await response.json(content_type=None)
            except aiohttp.ClientError as err:
                raise ClientProblem(f"cannot reach the hub at {url}: {err}") from None
        if response.status != 200:
            raise api_error(response.status, answer)
    except (ValueError, ClientProblem) as err:
        return fail(err)
    print(json.dumps(answer, indent=2) if args.json else describe(answer))
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", help="node id or MAC")
    parser.add_argument("--name", help="rename the node")
    parser.add_argument("--description", help="describe the node")
    area = parser.add_mutually_exclusive_group()
    area.add_argument("--area", help="put the node in this area")
    area.add_argument("--no-area", action="store_true", help="take the node out of its area")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG", help="add a tag (repeatable)")
    tags = parser.add_mutually_exclusive_group()
    tags.add_argument("--untag", action="append", default=[], metavar="TAG", help="remove a tag (repeatable)")
    tags.add_argument("--clear-tags", action="store_true", help="remove every tag (then add those of --tag)")
    add_client_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the node as JSON")


PAGE_SIZE = 1000
"""Nodes asked for per page (the API's largest ``limit``)."""


async def node_pages(
    http: aiohttp.ClientSession, url: str, filters: dict[str, str]
) -> AsyncIterator[list[dict[str, Any]]]:
    """The nodes of every page of ``GET /api/nodes`` with these filters, in id order; ClientProblem on an error."""
    cursor: str | None = None
    while True:
        params = {**filters, "limit": str(PAGE_SIZE), **({"cursor": cursor} if cursor else {})}
        try:
            async with http.get(f"{url}/api/nodes", params=params) as response:  # gzip accepted by default
                answer = await response.json(content_type=None)
        except aiohttp.ClientError as err:
            raise ClientProblem(f"cannot reach the hub at {url}: {err}") from None
        if response.status != 200:
            raise api_error(response.status, answer)
        yield answer["nodes"]
        cursor = answer["next"]
        if cursor is None:
            return


def row(node: dict[str, Any]) -> dict[str, Any]:
    """What ``hub nodes`` prints of a node (the same keys, so scripts can use either)."""
    return {
        "node_id": node["node_id"],
        "name": node["name"],
        "status": node["status"],
        "last_seen": node["last_seen"],
        "entities": len(node["entities"]),
        "firmware_version": node["firmware_version"],
        "area": node["area"],
        "tags": node["tags"],
    }


async def _node_list(args: argparse.Namespace) -> int:
    filters = {key: value for key, value in (("status", args.status), ("area", args.area)) if value is not None}
    if args.tag:
        filters["tag"] = ",".join(args.tag)
    count = 0
    try:
        url = hub_url(args)
        async with session(args) as http:
            if not args.json:
                print(f"{'NODE':<18} {'NAME':<24} {'STATUS':<8} {'LAST SEEN':<20} {'ENTITIES':<8} AREA")
            async for nodes in node_pages(http, url, filters):
                for node in nodes:
                    line = row(node)
                    if args.json:  # one JSON list, written as the pages arrive
                        sys.stdout.write(("[\n  " if count == 0 else ",\n  ") + json.dumps(line))
                    else:
                        seen = _when(line["last_seen"]) if line["last_seen"] else "never"
                        print(
                            f"{line['node_id']:<18} {line['name'][:24]:<24} {line['status']:<8} {seen:<20} "
                            f"{line['entities']:<8} {line['area'] or '-'}"
                        )
                    count += 1
    except (ValueError, ClientProblem) as err:
        if args.json and count:
            print("\n]")
        return fail(err)
    print(("\n]" if count else "[]") if args.json else f"{count} node(s)")
    return 0


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=("online", "offline", "unknown"), help="only nodes in this status")
    parser.add_argument("--area", help="only nodes in this area")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="only nodes with this tag (repeatable)"
    )
    add_client_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON list (the keys of `hub nodes --json`)")


def register_node_command(register: Any) -> None:
    """Add ``hub node set`` and ``hub node list`` (see the ``hub_cli_commands`` hook)."""
    register("node set", _node_set, "set a node's name, description, area or tags on the running hub", _arguments)
    register("node list", _node_list, "list the running hub's nodes, page by page, with live status", _list_arguments)
