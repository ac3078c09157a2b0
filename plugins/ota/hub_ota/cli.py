"""``hub firmware add FILE`` and ``hub firmware list``: the catalogue from the shell.

They work on the configured database and data directory directly, through a hub built in the CLI role (storage
migrates and the ``ota`` plugin sets up, nothing connects or listens), like ``hub db upgrade`` and
``hub user create``: no running hub or API token is needed, and a running hub sees the new image at once (it
reads the catalogue from the database). The upload is recorded as made by ``cli:<your login name>``.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hub import ROLE_CLI, HubError, acting_as, build_hub

from .keys import DATA_OTA

if TYPE_CHECKING:
    from .catalogue import FirmwareCatalogue


def register_commands(register: Callable[..., None]) -> None:
    register("firmware add", firmware_add, help="add a firmware image to the catalogue", arguments=_add_arguments)
    register("firmware list", firmware_list, help="list the firmware images", arguments=_list_arguments)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="the application image (.bin)")
    parser.add_argument("--version", help="its version (default: the version the image carries)")
    parser.add_argument("--chip", help="the chip family it must be built for, e.g. esp32, esp32s3 (default: any)")


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


async def firmware_add(args: argparse.Namespace) -> int:
    """Validate and store FILE with its catalogue row; exit 1 with the reason when it is refused."""
    if not args.file.is_file():
        print(f"error: {args.file}: no such file", file=sys.stderr)
        return 1
    actor = f"cli:{getpass.getuser()}"
    try:
        async with _catalogue(args) as catalogue:
            with acting_as(actor):
                row, created = await catalogue.add_file(args.file, version=args.version, by=actor, chip=args.chip)
    except HubError as err:
        print(f"error: {args.file.name}: {err}", file=sys.stderr)
        return 1
    what = "added" if created else "already there:"
    print(f"{what} {row.version}  {row.chip}  {row.size} bytes  sha256 {row.sha256}")
    return 0


async def firmware_list(args: argparse.Namespace) -> int:
    """Every image, newest first."""
    try:
        async with _catalogue(args) as catalogue:
            rows = await catalogue.list()
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return 0
    print(f"{'VERSION':<16} {'CHIP':<9} {'SIZE':>9}  {'UPLOADED':<17} {'BY':<16} SHA256")
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.uploaded_at))
        print(f"{row.version[:16]:<16} {row.chip:<9} {row.size:>9}  {when:<17} {row.uploaded_by[:16]:<16} {row.sha256}")
    print(f"{len(rows)} image(s)")
    return 0


@contextlib.asynccontextmanager
async def _catalogue(args: argparse.Namespace) -> AsyncIterator[FirmwareCatalogue]:
    """The catalogue of a hub built in the CLI role, stopped after the command; a HubError if ota is not running."""
    hub = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)
    await hub.async_start()
    try:
        ota = hub.data.get(DATA_OTA)
        if ota is None:
            raise HubError(f"the ota plugin is not running: {hub.plugins.failed.get('ota', 'not loaded')}")
        yield ota.catalogue
    finally:
        await hub.async_stop()
