"""``hub esphome new|validate|compile|upload|list``: the node YAMLs of firmware/esphome/ from the hub's command line.

``validate`` runs ESPHome's own ``esphome config`` (offline: nothing is
downloaded or compiled) and ``compile`` runs ``esphome compile`` (with the
node's update manifest URL from the ``ota`` plugin, :mod:`.update_url`), their output
printed line by line as ESPHome writes it; both leave the records the hub and
its dashboard read (:mod:`.builds`).  ``upload`` is in :mod:`.cli_upload`.
``list`` shows each defined node next to what the hub knows of it (matched by
the ESPHome name the node reports in ``esphome/discover/<name>``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hub import ROLE_CLI, build_hub

from . import cli_upload
from .config import SECTION
from .firmware import TEMPLATES, FirmwareError, NodeFile, new_node, node_files
from .provision import Outcome, Provisioner
from .runtime import DATA_PROVISIONING


def register_commands(register: Any) -> None:
    """Called from the plugin's ``hub_cli_commands``."""
    register("esphome new", cmd_new, help="write a new node YAML from an example node", arguments=_new_arguments)
    register(
        "esphome validate", cmd_validate, help="check node YAMLs with `esphome config`", arguments=_validate_arguments
    )
    register("esphome compile", cmd_compile, help="compile a node with `esphome compile`", arguments=_name_argument)
    register(
        "esphome upload",
        cli_upload.cmd_upload,
        help="roll a compiled node out through the hub's OTA (or `esphome upload --device`)",
        arguments=cli_upload.arguments,
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


def _name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the node's name or file name")


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


async def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    provisioner = Provisioner(Path(settings["firmware_dir"]), settings["executable"])
    try:
        provisioner.executable()
        nodes = _chosen(node_files(provisioner.directory), args.names)
        if not nodes:
            raise FirmwareError(f"No node files in {provisioner.directory}")
        if not args.example_secrets:
            try:
                provisioner.check_secrets()
            except FirmwareError as err:
                raise FirmwareError(f"{err}, or validate with --example-secrets") from None
        failed = []
        for node in nodes:
            print(f"==> esphome config {node.path.name}", flush=True)
            outcome = await provisioner.validate(node, _print, by=_login(), example_secrets=args.example_secrets)
            if not outcome.ok:
                failed.append(node.path.name)
                _explain(outcome)
    except FirmwareError as err:
        print(err, file=sys.stderr)
        return 1
    if failed:
        print(f"{len(failed)} of {len(nodes)} invalid: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"{len(nodes)} node file(s) valid")
    return 0


async def cmd_compile(args: argparse.Namespace) -> int:
    hub = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)
    settings = hub.config[SECTION]
    try:
        Provisioner(Path(settings["firmware_dir"]), settings["executable"]).executable()  # before starting the hub
        (node,) = _chosen(node_files(Path(settings["firmware_dir"])), [args.name])
        # Started, so the ota plugin's service gives the node's update manifest URL (see update_url).
        await hub.async_start()
        try:
            provisioner = Provisioner(Path(settings["firmware_dir"]), settings["executable"], hub.services)
            print(f"==> esphome compile {node.path.name}", flush=True)
            outcome = await provisioner.compile(node, _print, by=_login())
        finally:
            await hub.async_stop()
    except FirmwareError as err:
        print(err, file=sys.stderr)
        return 1
    if not outcome.ok or outcome.build is None:
        _explain(outcome)
        print(f"Compiling {node.path.name} failed", file=sys.stderr)
        return 1
    build = outcome.build
    print(f"Compiled {build.name}: version {build.version or '?'}, config hash {build.config_hash or '?'}")
    print(f"  binary  {build.binary}")
    print(f"  size    {build.size} bytes")
    print(f"  sha256  {build.sha256}")
    if build.factory_binary:
        print(f"  factory {build.factory_binary} (first flash over USB)")
    return 0


def _print(line: str) -> None:
    print(line, flush=True)


def _explain(outcome: Outcome) -> None:
    if outcome.problem:
        print(f"error: {outcome.problem}", file=sys.stderr, flush=True)


def _login() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


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
    if not Path(hub.config[SECTION]["firmware_dir"]).is_dir():
        print(f"{hub.config[SECTION]['firmware_dir']}: no such folder (esphome: firmware_dir:)", file=sys.stderr)
        return 1
    await hub.async_start()
    try:
        rows = hub.data[DATA_PROVISIONING].rows()
    finally:
        await hub.async_stop()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'FILE':<22} {'NAME':<18} {'NODE':<19} {'STATUS':<8} {'RUNNING':<12} {'COMPILED':<12} UP TO DATE")
    for row in rows:
        compiled = row["compiled"]
        built = "-" if compiled is None else (compiled["version"] or "?") + (" (old)" if compiled["outdated"] else "")
        node = row["node_id"] if row["seen"] else "not seen yet"
        print(
            f"{row['file'][:22]:<22} {(row['name'] or '?')[:18]:<18} {node:<19} {row['status'] or '-':<8} "
            f"{(row['running_version'] or '-')[:12]:<12} {built[:12]:<12} {_yes_no(row['up_to_date'])}"
        )
    print(f"{len(rows)} node file(s)")
    return 0


def _yes_no(value: Any) -> str:
    return "-" if value is None else "yes" if value else "no"
