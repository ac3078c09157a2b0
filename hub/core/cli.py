"""The ``hub`` command line.

The core offers ``run``, ``check-config``, ``plugins``, ``nodes`` and ``plugin new``; plugins
add their own through the ``hub_cli_commands`` hook (storage adds ``db
upgrade``, the ESP32 plugin ``simulate``).  Every subcommand takes ``-c FILE``
(default ``./config.yaml``): a file named with ``-c`` must exist, while a
missing default means the built-in defaults (except for ``check-config``).
Exit codes: 0 success, 1 a problem the message explains (bad config, …), 2 bad
usage, 130 interrupted, 141 the reader of the output went away (``| head``).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hub.core.plugins.manager import PluginManager
from hub.version import __version__

from .bootstrap import build_hub, configure_logging, load_plugins
from .errors import ConfigError, StartupError
from .hub import Hub, freeze_startup_heap
from .roles import ROLE_ALL, ROLE_CLI, ROLES
from .scaffold import ScaffoldError, new_plugin

DEFAULT_CONFIG = "config.yaml"

Handler = Callable[[argparse.Namespace], Any]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hub`` console script."""
    plugins = load_plugins()
    parser = build_parser(plugins)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    args.plugins = plugins
    named = args.config is not None
    args.config = args.config if named else Path(DEFAULT_CONFIG)
    try:
        if named:
            require_config_file(args.config)
        result = args.handler(args)
        if inspect.isawaitable(result):
            result = asyncio.run(result)  # type: ignore[arg-type]
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's flush at exit
    except BrokenPipeError:
        _discard_stdout()
        return 128 + signal.SIGPIPE
    except ConfigError as err:
        print(f"Invalid config ({args.config}):", file=sys.stderr)
        for message in err.messages:
            print(f"  {message}", file=sys.stderr)
        return 1
    except StartupError as err:
        print(f"{err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


def build_parser(plugins: PluginManager) -> argparse.ArgumentParser:
    """The full parser: core commands plus whatever plugins register."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", type=Path, help=f"config file (default: {DEFAULT_CONFIG})")
    parser = argparse.ArgumentParser(prog="hub", description="Self-hosted hub for fleets of ESP32 nodes.")
    parser.add_argument("--version", action="version", version=f"hub {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}

    def register(
        name: str, handler: Handler, help: str = "", arguments: Callable[[argparse.ArgumentParser], None] | None = None
    ) -> None:
        target = commands
        *parents, leaf = name.split()
        for depth, parent in enumerate(parents):
            path = " ".join(parents[: depth + 1])  # groups nest: "device credentials add"
            if path not in groups:
                group_parser = target.add_parser(parent, help=f"{parent} commands")
                groups[path] = group_parser.add_subparsers(title=f"{path} commands", metavar="COMMAND")
            target = groups[path]
        sub = target.add_parser(leaf, help=help, description=help, parents=[common])
        if arguments is not None:
            arguments(sub)
        sub.set_defaults(handler=handler)

    register("run", _cmd_run, "run the hub", lambda sub: _run_arguments(sub, plugins))
    register("check-config", _cmd_check_config, "validate the config file and exit 0 (valid) or 1")
    register("plugins", _cmd_plugins, "list loaded plugins with version and hooks", _json_argument)
    register("nodes", _cmd_nodes, "list known nodes with status, last seen, entity count and area", _json_argument)
    register("plugin new", _cmd_plugin_new, "write a new plugin distribution (hub-NAME/) to start from", _new_arguments)
    plugins.call_sync("hub_cli_commands", register=register)
    return parser


def _run_arguments(parser: argparse.ArgumentParser, plugins: PluginManager) -> None:
    parser.add_argument("--demo", type=int, metavar="N", default=0, help="also run N simulated ESP32 nodes")
    parser.add_argument(
        "--role",
        choices=[name for name, role in ROLES.items() if role is not ROLE_CLI],
        default=ROLE_ALL.name,
        help="what this process does: all (default: one process), worker (ingest only), api (HTTP/WebSocket only)",
    )
    plugins.call_sync("hub_run_arguments", parser=parser)


def _json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


async def _cmd_run(args: argparse.Namespace) -> int:
    hub = build_hub(args.config, role=ROLES[args.role], plugins=args.plugins)
    hub.plugins.call_sync("hub_run_config", config=hub.config, args=args)
    configure_logging(hub.config["hub"]["log_level"])

    async def after_start() -> None:
        freeze_startup_heap(hub)
        if args.demo > 0:
            await hub.plugins.call_async("hub_demo", hub=hub, nodes=args.demo)

    await hub.async_run(after_start=after_start)
    return 0


def _new_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the plugin's name: lower case, words joined by - or _")
    parser.add_argument("--dir", type=Path, default=Path("."), help="where to create hub-NAME/ (default: here)")
    parser.add_argument("--description", help="one line for pyproject.toml and the README")


def _cmd_plugin_new(args: argparse.Namespace) -> int:
    """Write hub-NAME/ and say what to do next; an invalid or taken name or a non-empty target exits 1."""
    plugins: PluginManager = args.plugins
    try:
        target = new_plugin(args.name, args.dir, args.description, taken=[*plugins.info, *plugins.failed])
    except ScaffoldError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"Wrote {target}/:")
    for path in sorted(path for path in target.rglob("*") if path.is_file()):
        print(f"  {path.relative_to(target)}")
    print(f"Next (in the hub's environment):\n  cd {target}\n  pip install -e '.[test]'\n  pytest\n  hub plugins")
    return 0


def require_config_file(path: Path) -> None:
    """ConfigError unless ``path`` exists: a mistyped ``-c`` must neither run on the defaults nor create data.

    Only ``./config.yaml`` taken by default may be missing (``hub run`` then starts on the built-in defaults);
    ``check-config`` validates a file, so it needs one even then.
    """
    if not path.exists():
        raise ConfigError([f"{path}: no such file"])


def _discard_stdout() -> None:
    """Point stdout at /dev/null once its reader is gone, so the flush at exit cannot fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _cmd_check_config(args: argparse.Namespace) -> int:
    require_config_file(args.config)
    hub = build_hub(args.config, plugins=args.plugins)
    sections = ", ".join(sorted(hub.config))
    print(f"{args.config}: valid (sections: {sections})")
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    plugins: PluginManager = args.plugins
    rows = [vars(plugins.info[name]) for name in plugins.order]  # in set-up order
    if args.json:
        print(json.dumps({"loaded": rows, "failed": plugins.failed}, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']:<14} {row['version']:<10} {row['source']:<18} {', '.join(row['hooks'])}")
    for name, reason in plugins.failed.items():
        print(f"{name:<14} FAILED     {reason}")
    return 0


async def _cmd_nodes(args: argparse.Namespace) -> int:
    hub = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)
    configure_logging("warning")
    await hub.async_start()
    try:
        nodes = sorted(hub.registry, key=lambda node: node.node_id)
        rows = [
            {
                "node_id": node.node_id,
                "name": node.name,
                "status": node.status,
                "last_seen": node.last_seen,
                "entities": len(node.entities),
                "firmware_version": node.firmware_version,
                "area": node.area,
                "tags": list(node.tags),
            }
            for node in nodes
        ]
    finally:
        await hub.async_stop()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NODE':<18} {'NAME':<24} {'STATUS':<8} {'LAST SEEN':<15} {'ENTITIES':<8} AREA")
    now = time.time()
    for row in rows:
        seen = _ago(now - row["last_seen"]) if row["last_seen"] else "never"
        area = row["area"] or "-"
        print(f"{row['node_id']:<18} {row['name'][:24]:<24} {row['status']:<8} {seen:<15} {row['entities']:<8} {area}")
    print(f"{len(rows)} node(s)")
    return 0


def _duration(seconds: float) -> str:
    """``59 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``: the dashboard's wording (``formatDuration`` in its format.js)."""
    s = max(0, math.floor(seconds + 0.5))  # JavaScript's Math.round, not Python's round-half-even
    if s < 60:
        return f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    days = hours // 24
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def _ago(seconds: float) -> str:
    """``just now``, ``12 s ago``, ``7 min ago``: as the dashboard says it (``formatAgo``)."""
    return "just now" if seconds < 1.5 else f"{_duration(seconds)} ago"


__all__ = ["Hub", "build_parser", "main"]
