"""``hub device credentials add/list/remove/sync``: per-device MQTT logins, for the embedded broker and Mosquitto.

The hub's store (:mod:`.credentials`) is the source of truth; with ``broker:
mosquitto: password_file`` / ``acl_file`` set (or ``--password-file`` /
``--acl-file``) every change is also written into Mosquitto's files
(:mod:`.mosquitto_files`), which Mosquitto reads at start and on a reload.  A
new password is printed once on stdout, everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hub import ROLE_CLI, Hub, InvalidMac, build_hub, normalize_mac

from .acl import check_esphome_name, discovery_prefix, mosquitto_block
from .credentials import (
    CredentialsError,
    CredentialStore,
    DeviceCredential,
    hash_password,
    new_password,
    username_for,
)
from .mosquitto_files import update_acl_file, update_password_file

Register = Any

RELOAD_HINT = "Mosquitto reads these files at start and on SIGHUP: systemctl reload mosquitto"


def _hub(args: argparse.Namespace) -> Hub:
    return build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)


def _mosquitto_paths(hub: Hub, args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    configured = hub.config.get("broker", {}).get("mosquitto", {})
    password_file = args.password_file or configured.get("password_file")
    acl_file = args.acl_file or configured.get("acl_file")
    return (Path(password_file) if password_file else None, Path(acl_file) if acl_file else None)


def _sync(hub: Hub, args: argparse.Namespace, store: CredentialStore, removed: tuple[str, ...] = ()) -> None:
    """Bring Mosquitto's files in line with the store (under the store's lock), if they are configured."""
    password_file, acl_file = _mosquitto_paths(hub, args)
    if password_file is None and acl_file is None:
        return
    with store.locked():
        store.reload_if_changed()
        if password_file is not None:
            hashes = {name: device.password_hash for name, device in store.devices.items()}
            update_password_file(password_file, hashes, removed)
            print(f"Updated {password_file}", file=sys.stderr)
        if acl_file is not None:
            update_acl_file(acl_file, mosquitto_block(store.devices.values(), discovery_prefix(hub.config)))
            print(f"Updated {acl_file}", file=sys.stderr)
    print(RELOAD_HINT, file=sys.stderr)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _add(args: argparse.Namespace) -> int:
    hub = _hub(args)
    try:
        username = username_for(args.mac)
        if args.esphome is not None:
            check_esphome_name(args.esphome, discovery_prefix(hub.config), reserved=hub.plugins.order)
    except (InvalidMac, ValueError) as err:
        return _fail(str(err))
    password = new_password()
    store = CredentialStore.in_dir(hub.data_dir)
    try:
        with store.transaction():
            existing = store.devices.get(username)
            if existing is not None and not args.replace:
                raise CredentialsError(f"{username} already has credentials (--replace issues a new password)")
            esphome = args.esphome if args.esphome is not None else (existing.esphome_name if existing else None)
            holder = store.by_esphome_name(esphome) if esphome else None
            if holder is not None and holder.username != username:
                raise CredentialsError(f"the ESPHome name {esphome!r} belongs to {holder.username}")
            device = DeviceCredential(username, normalize_mac(args.mac), hash_password(password), time.time(), esphome)
            store.devices[username] = device
        _sync(hub, args, store)
    except CredentialsError as err:
        return _fail(str(err))
    bound = f", ESPHome node {device.esphome_name!r}" if device.esphome_name else ""
    print(f"Device {device.mac}: MQTT username {username}{bound}. The password is shown only now:", file=sys.stderr)
    print(password)
    return 0


def _remove(args: argparse.Namespace) -> int:
    hub = _hub(args)
    try:
        username = username_for(args.mac)
    except InvalidMac as err:
        return _fail(str(err))
    store = CredentialStore.in_dir(hub.data_dir)
    try:
        with store.transaction():
            if store.devices.pop(username, None) is None:
                raise CredentialsError(f"no credentials for {username}")
        _sync(hub, args, store, removed=(username,))
    except CredentialsError as err:
        return _fail(str(err))
    print(f"Removed the credentials of {username}.", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    hub = _hub(args)
    try:
        devices = sorted(CredentialStore.in_dir(hub.data_dir).devices.values(), key=lambda device: device.username)
    except CredentialsError as err:
        return _fail(str(err))
    if args.json:
        print(json.dumps([device.public() for device in devices], indent=2))
        return 0
    for device in devices:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(device.created))
        print(f"{device.username:<14} {device.mac:<18} {device.esphome_name or '-':<32} {created}")
    print(f"{len(devices)} device(s)")
    return 0


def _sync_command(args: argparse.Namespace) -> int:
    hub = _hub(args)
    if _mosquitto_paths(hub, args) == (None, None):
        return _fail(
            "no Mosquitto files: set broker: mosquitto: password_file / acl_file, or --password-file/--acl-file"
        )
    try:
        _sync(hub, args, CredentialStore.in_dir(hub.data_dir))
    except CredentialsError as err:
        return _fail(str(err))
    return 0


def _file_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-file", help="Mosquitto password file (default: broker: mosquitto: password_file)")
    parser.add_argument("--acl-file", help="Mosquitto ACL file (default: broker: mosquitto: acl_file)")


def _add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mac", metavar="MAC", help="the device's MAC, any spelling")
    parser.add_argument("--esphome", metavar="NAME", help="bind the device's ESPHome node name (its topic prefix)")
    parser.add_argument("--replace", action="store_true", help="issue a new password to a device that has one")
    _file_args(parser)


def _remove_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mac", metavar="MAC", help="the device's MAC, any spelling")
    _file_args(parser)


def _list_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def register_commands(register: Register) -> None:
    """The ``hub device credentials …`` commands."""
    register("device credentials add", _add, "give a device its own MQTT login and print the password once", _add_args)
    register("device credentials remove", _remove, "remove a device's MQTT login", _remove_args)
    register("device credentials list", _list, "list devices with MQTT logins", _list_args)
    register("device credentials sync", _sync_command, "rewrite Mosquitto's files from the hub's store", _file_args)
