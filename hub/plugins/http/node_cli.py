"""``hub node set NODE [--name N] [--area A | --no-area] [--tag T …] [--untag T …]``: change a node on the running hub.

An API client (token and address: :mod:`.api_client`) sending one ``PATCH
/api/nodes/{id}``: tags are added and removed on the hub in one step
(``add_tags``/``remove_tags``), so two people tagging the same node at once do
not undo each other.  Prints the node as it is afterwards; exit code 0, or 1
with the API's message.
"""

from __future__ import annotations

import argparse
import json
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


def register_node_command(register: Any) -> None:
    """Add ``hub node set`` (see the ``hub_cli_commands`` hook)."""
    register("node set", _node_set, "set a node's name, description, area or tags on the running hub", _arguments)
