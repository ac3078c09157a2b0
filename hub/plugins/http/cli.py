"""``hub user …`` and ``hub token …``: manage who may use the API, from the machine the hub runs on.

They edit the auth file in the hub's data directory directly (locked, atomic),
so they work whether or not the hub is running; a running hub picks the
change up at its next authentication.  ``hub user create`` is how the owner
account is made without ever exposing a sign-up form.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Any

from hub import ROLE_CLI, build_hub
from hub.web import Conflict

from .auth.manager import AuthManager
from .auth.passwords import check_password_policy, check_username
from .auth.store import KIND_LONG_LIVED, AuthStore, User

Register = Any


def _manager(args: argparse.Namespace) -> AuthManager:
    hub = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)
    return AuthManager(AuthStore.in_dir(hub.data_dir), time.time)


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise ValueError("the passwords differ")
    return first


def _find_user(auth: AuthManager, username: str | None) -> User:
    users = list(auth.store.users.values())
    if username is not None:
        user = auth.store.user_by_name(username)
        if user is None:
            raise LookupError(f"no user {username!r}")
        return user
    if not users:
        raise LookupError("no user exists yet: run `hub user create --username NAME` first")
    owners = [user for user in users if user.is_owner] or users
    return min(owners, key=lambda user: user.created)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


async def _user_create(args: argparse.Namespace) -> int:
    auth = _manager(args)
    try:
        check_username(args.username)
        password = _read_password(args.password_stdin)
        check_password_policy(password)
        user = await auth.create_user(args.username, password)
    except (ValueError, Conflict) as err:
        return _fail(str(err))
    role = "owner" if user.is_owner else "user"
    print(f"Created {role} {user.username!r}. Sign in at the hub's web address.", file=sys.stderr)
    return 0


async def _user_password(args: argparse.Namespace) -> int:
    auth = _manager(args)
    try:
        user = _find_user(auth, args.username)
        password = _read_password(args.password_stdin)
        check_password_policy(password)
    except (LookupError, ValueError) as err:
        return _fail(str(err))
    await auth.set_password(user, password)
    print(f"Password of {user.username!r} changed; their sessions and tokens were revoked.", file=sys.stderr)
    return 0


def _user_delete(args: argparse.Namespace) -> int:
    auth = _manager(args)
    try:
        user = _find_user(auth, args.username)
    except LookupError as err:
        return _fail(str(err))
    auth.delete_user(user)
    print(f"Deleted user {user.username!r} and their tokens.", file=sys.stderr)
    return 0


def _user_list(args: argparse.Namespace) -> int:
    users = sorted(_manager(args).store.users.values(), key=lambda user: user.created)
    if args.json:
        print(json.dumps([user.public() for user in users], indent=2))
        return 0
    for user in users:
        print(f"{user.username:<24} {'owner' if user.is_owner else 'user':<6} {_when(user.created)}")
    print(f"{len(users)} user(s)")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    auth = _manager(args)
    try:
        user = _find_user(auth, args.username)
    except LookupError as err:
        return _fail(str(err))
    name = args.name.strip()
    if not name or len(name) > 100:
        return _fail("--name must be 1-100 characters")
    if args.days is not None and not 1 <= args.days <= 3650:
        return _fail("--days must be between 1 and 3650")
    stored, token = auth.create_long_lived(user, name, args.days * 86400.0 if args.days else None)
    expiry = f"until {_when(stored.expires)}" if stored.expires else "until revoked"
    print(f"Long-lived token {stored.id} for {user.username!r}, valid {expiry}. It is shown only now:", file=sys.stderr)
    print(token)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    auth = _manager(args)
    tokens = auth.tokens_of()
    users = auth.store.users
    if args.json:
        print(json.dumps([token.public() for token in tokens], indent=2))
        return 0
    print(f"{'ID':<17} {'KIND':<10} {'USER':<16} {'NAME':<24} {'CREATED':<17} EXPIRES")
    for token in tokens:
        owner = users[token.user_id].username if token.user_id in users else "?"
        kind = "token" if token.kind == KIND_LONG_LIVED else "session"
        expires = _when(token.expires) if token.expires else "never"
        print(f"{token.id:<17} {kind:<10} {owner[:16]:<16} {token.name[:24]:<24} {_when(token.created):<17} {expires}")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    if not _manager(args).revoke(args.token_id):
        return _fail(f"no token {args.token_id!r} (see `hub token list`)")
    print(f"Revoked {args.token_id}.", file=sys.stderr)
    return 0


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "-"


def _username_args(required: bool, password: bool = False):
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--username", required=required, help="the user" + ("" if required else " (default: the owner)")
        )
        if password:
            parser.add_argument(
                "--password-stdin",
                action="store_true",
                help="read the password from stdin (the default when not a terminal)",
            )

    return add


def _json_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _token_create_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="what the token is for, e.g. prometheus")
    parser.add_argument("--username", help="whose token (default: the owner)")
    parser.add_argument("--days", type=int, help="expire after this many days (default: until revoked)")


def _token_revoke_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("token_id", help="the ID shown by `hub token list`")


def register_commands(register: Register) -> None:
    """Add the user and token commands (see the ``hub_cli_commands`` hook)."""
    register(
        "user create",
        _user_create,
        "create a user (the first one is the owner); the password is prompted",
        _username_args(True, True),
    )
    register(
        "user password",
        _user_password,
        "set a user's password (revokes their sessions and tokens)",
        _username_args(False, True),
    )
    register("user delete", _user_delete, "delete a user and their tokens", _username_args(True))
    register("user list", _user_list, "list users", _json_args)
    register("token create", _token_create, "create a long-lived API token and print it (once)", _token_create_args)
    register("token list", _token_list, "list long-lived tokens and sign-in sessions", _json_args)
    register("token revoke", _token_revoke, "revoke a token or session", _token_revoke_args)
