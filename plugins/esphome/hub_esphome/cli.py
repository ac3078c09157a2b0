"""``hub esphome new|validate|list``: the node YAMLs of firmware/esphome/ from the hub's command line.

``validate`` runs ESPHome's own ``esphome config`` (offline: nothing is
downloaded or compiled), its output streamed as it comes; ``list`` shows each
defined node next to what the hub knows of it (matched by the ESPHome name the
node reports in ``esphome/discover/<name>``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hub import ROLE_CLI, build_hub

from .config import SECTION
from .firmware import TEMPLATES, FirmwareError, NodeFile, find_executable, new_node, node_files


def register_commands(register: Any) -> None:
    """Called from the plugin's ``hub_cli_commands``."""
    register("esphome new", cmd_new, help="write a new node YAML from an example node", arguments=_new_arguments)
    register(
        "esphome validate", cmd_validate, help="check node YAMLs with `esphome config`", arguments=_validate_arguments
    )
    register("esphome list", cmd_list, help="defined nodes and what the hub knows of them", arguments=_list_arguments)


def _new_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the node's name: lower-case letters, digits and '-' (e.g. kitchen-climate)")
    parser.add_argument("--template", choices=TEMPLATES, default="climate", help="example node to start from")
    parser.add_argument("--friendly-name", help="the name shown to people (default: from NAME)")


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="node names or file names (default: all)")
    parser.add_argument("--all", action="store_true", help="every node file (the default without names)")
    parser.add_argument(
        "--example-secrets",
        action="store_true",
        help="validate with secrets.example.yaml instead of your secrets.yaml (in a temporary copy)",
    )


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return build_hub(args.config, role=ROLE_CLI, plugins=args.plugins).config[SECTION]


def cmd_new(args: argparse.Namespace) -> int:
    directory = Path(_settings(args)["firmware_dir"])
    try:
        path = new_node(directory, args.name, args.template, args.friendly_name)
    except FirmwareError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"Wrote {path} (from {args.template}.yaml). Check it with: hub esphome validate {args.name}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    directory = Path(settings["firmware_dir"])
    try:
        executable = find_executable(settings["executable"])
        nodes = _chosen(node_files(directory), args.names)
    except FirmwareError as err:
        print(err, file=sys.stderr)
        return 1
    if not nodes:
        print(f"No node files in {directory}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="hub-esphome-") as scratch:
        if args.example_secrets:
            workdir = Path(scratch) / "esphome"
            shutil.copytree(directory, workdir, ignore=shutil.ignore_patterns("secrets.yaml", ".esphome"))
            shutil.copy(workdir / "secrets.example.yaml", workdir / "secrets.yaml")
        elif not (directory / "secrets.yaml").is_file():
            print(
                f"{directory / 'secrets.yaml'} is missing: copy secrets.example.yaml to it and fill it in, "
                "or validate with --example-secrets",
                file=sys.stderr,
            )
            return 1
        else:
            workdir = directory
        failed = []
        for node in nodes:
            print(f"==> esphome config {node.path.name}", flush=True)
            result = subprocess.run([str(executable), "config", node.path.name], cwd=workdir, check=False)
            if result.returncode != 0:
                failed.append(node.path.name)
    if failed:
        print(f"{len(failed)} of {len(nodes)} invalid: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"{len(nodes)} node file(s) valid")
    return 0


def _chosen(nodes: list[NodeFile], names: list[str]) -> list[NodeFile]:
    if not names:
        return nodes
    chosen = []
    for wanted in names:
        match = [n for n in nodes if wanted in (n.name, n.path.name, n.path.stem)]
        if not match:
            raise FirmwareError(f"no node {wanted!r} in {nodes[0].path.parent if nodes else 'firmware_dir'}")
        chosen += [n for n in match if n not in chosen]
    return chosen


async def cmd_list(args: argparse.Namespace) -> int:
    hub = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)
    try:
        nodes = node_files(Path(hub.config[SECTION]["firmware_dir"]))
    except FirmwareError as err:
        print(err, file=sys.stderr)
        return 1
    await hub.async_start()
    try:
        known = {n.attributes.get("esphome_name"): n for n in hub.registry if n.attributes.get("esphome_name")}
        rows = []
        for node in nodes:
            registered = known.get(node.name)
            rows.append(
                {
                    "file": node.path.name,
                    "name": node.name,
                    "friendly_name": node.friendly_name,
                    "node_id": registered.node_id if registered else None,
                    "status": registered.status if registered else None,
                    "firmware_version": registered.firmware_version if registered else None,
                }
            )
    finally:
        await hub.async_stop()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'FILE':<24} {'NAME':<20} {'NODE':<18} {'STATUS':<8} VERSION")
    for row in rows:
        print(
            f"{row['file'][:24]:<24} {(row['name'] or '?')[:20]:<20} {row['node_id'] or 'not seen yet':<18} "
            f"{row['status'] or '-':<8} {row['firmware_version'] or '-'}"
        )
    print(f"{len(rows)} node file(s)")
    return 0
