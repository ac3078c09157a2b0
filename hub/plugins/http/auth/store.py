"""The auth file: users and stored tokens in ``<data_dir>/auth.json`` (mode 0600), like Home Assistant's ``.storage/auth``.

Only hashes are stored: argon2id for passwords, SHA-256 for token secrets (they
are 256-bit random, so a fast hash is enough and a stolen file reveals no usable
token).  Writes are atomic (temporary file, fsync, rename) so a crash never
leaves half a file, and serialized across processes with ``flock`` so ``hub
token create`` and a running hub can both change it.  A running hub notices a
change made by the CLI at the next authentication (one ``stat``), so a token
revoked from the command line stops working at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import voluptuous as vol

from hub import HubError, file_lock, file_stamp, write_private_json

FILE_NAME = "auth.json"
FORMAT_VERSION = 1

KIND_REFRESH = "refresh"
"""A session: issued by a sign-in; exchanged (and rotated) for short-lived access tokens; expires unless used."""
KIND_LONG_LIVED = "long_lived"
"""Created for scripts (``hub token create`` or the API); used directly as a bearer token."""


class AuthStoreError(HubError):
    """The auth file cannot be read or is not in the expected format."""


@dataclass(slots=True)
class User:
    """A person who may sign in.  Every user may do everything; the owner is the first one."""

    id: str
    username: str
    password_hash: str
    created: float
    is_owner: bool = False

    def public(self) -> dict[str, Any]:
        """What the API may show (never the hash)."""
        return {"id": self.id, "username": self.username, "created": self.created, "is_owner": self.is_owner}


@dataclass(slots=True)
class StoredToken:
    """A refresh token or a long-lived token; ``secret_hash`` is SHA-256 of its secret part."""

    id: str
    user_id: str
    kind: str
    name: str
    secret_hash: str
    created: float
    expires: float | None = None
    last_used: float | None = None
    address: str | None = None
    """Where the session signed in or last renewed from (sessions only)."""
    previous_hashes: list[str] = field(default_factory=list)
    """Hashes of the session's rotated-out refresh secrets: one presented again means a copied token."""

    def public(self) -> dict[str, Any]:
        """What the API may show (never the hash)."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "kind": self.kind,
            "name": self.name,
            "created": self.created,
            "expires": self.expires,
            "last_used": self.last_used,
            "address": self.address,
        }


_NUMBER = vol.Any(int, float)
_FILE_SCHEMA = vol.Schema(
    {
        vol.Required("version"): FORMAT_VERSION,
        vol.Required("users"): [
            {
                vol.Required("id"): str,
                vol.Required("username"): str,
                vol.Required("password_hash"): str,
                vol.Required("created"): _NUMBER,
                vol.Optional("is_owner", default=False): bool,
            }
        ],
        vol.Required("tokens"): [
            {
                vol.Required("id"): str,
                vol.Required("user_id"): str,
                vol.Required("kind"): vol.In([KIND_REFRESH, KIND_LONG_LIVED]),
                vol.Required("name"): str,
                vol.Required("secret_hash"): str,
                vol.Required("created"): _NUMBER,
                vol.Optional("expires", default=None): vol.Any(None, _NUMBER),
                vol.Optional("last_used", default=None): vol.Any(None, _NUMBER),
                vol.Optional("address", default=None): vol.Any(None, str),
                vol.Optional("previous_hashes", default=list): [str],
            }
        ],
    }
)


class AuthStore:
    """Users and tokens, in memory and in the auth file; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users: dict[str, User] = {}
        self.tokens: dict[str, StoredToken] = {}
        self.removed_listeners: list[Callable[[set[str]], None]] = []
        """Called with the ids of tokens that disappeared when the file was re-read."""
        self._stamp: tuple[int, int, int] | None = None

    @classmethod
    def in_dir(cls, data_dir: Path) -> AuthStore:
        """The store of a hub whose data directory is ``data_dir``, loaded."""
        store = cls(Path(data_dir) / FILE_NAME)
        store.reload_if_changed()
        return store

    # --- reading ---------------------------------------------------------------------
    def reload_if_changed(self) -> None:
        """Re-read the file if another process replaced it since we last read or wrote it."""
        stamp = file_stamp(self.path)
        if stamp == self._stamp:
            return
        before = set(self.tokens)
        self._load()
        self._stamp = stamp
        removed = before - set(self.tokens)
        if removed:
            for listener in self.removed_listeners:
                listener(removed)

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self.users, self.tokens = {}, {}
            return
        except OSError as err:
            raise AuthStoreError(f"cannot read {self.path}: {err}") from err
        try:
            data = _FILE_SCHEMA(orjson.loads(raw))
        except (orjson.JSONDecodeError, vol.Invalid) as err:
            raise AuthStoreError(f"{self.path} is damaged ({err}); restore it from a backup") from err
        self.users = {user["id"]: User(**user) for user in data["users"]}
        self.tokens = {token["id"]: StoredToken(**token) for token in data["tokens"]}

    def user_by_name(self, username: str) -> User | None:
        """The user with that name, compared case-insensitively."""
        wanted = username.casefold()
        return next((user for user in self.users.values() if user.username.casefold() == wanted), None)

    # --- writing ---------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[AuthStore]:
        """Lock the file, bring memory up to date, let the caller change it, then write it atomically."""
        with file_lock(self.path):
            self.reload_if_changed()
            yield self
            self._write()

    def _write(self) -> None:
        data = {
            "version": FORMAT_VERSION,
            "users": [asdict(user) for user in self.users.values()],
            "tokens": [asdict(token) for token in self.tokens.values()],
        }
        self._stamp = write_private_json(self.path, data)
