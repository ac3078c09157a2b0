"""Per-device MQTT credentials: ``<data_dir>/device-credentials.json`` (mode 0600), the hub's one source of truth.

A device's username is its MAC as 12 lower-case hex digits (``246f28aa0001``):
the spelling the device uses in its topics, so the broker's ACL can tie
``devices/{MAC}/…`` to the login with a plain ``%u`` pattern.  A device may also
be bound to an ESPHome node name (``--esphome NAME``), which is that node's topic
prefix, discovery node id and ``esphome/discover/NAME`` (see :mod:`.acl`).

Passwords are made here (192 random bits), shown once and never stored: only a
``$7$`` hash, the PBKDF2-SHA512 format of ``mosquitto_passwd`` (Mosquitto 2.0),
so one string serves both the embedded broker and Mosquitto's password file.
Its 101 iterations are mosquitto_passwd's default; a random 192-bit secret
needs no key stretching to resist guessing, and a cheap check keeps either
broker from being slowed down by a flood of CONNECTs.

Writes are atomic (temporary file, fsync, rename) and serialised across
processes with ``flock``, so the CLI and a running hub can share the file; the
embedded broker re-reads it when its ``stat`` changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import voluptuous as vol

from hub import HubError, file_lock, file_stamp, normalize_mac, write_private_json

FILE_NAME = "device-credentials.json"
FORMAT_VERSION = 1

PBKDF2_PREFIX = "$7$"
PBKDF2_ITERATIONS = 101
"""mosquitto_passwd's default (``$7$101$…``); see the module docstring for why that is enough here."""
_SALT_BYTES = 12

ESPHOME_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30})")
"""An ESPHome node name as ESPHome accepts it: lower-case letters, digits and ``-``, at most 31 characters."""


class CredentialsError(HubError):
    """The credentials file cannot be read or written, or a change to it is not allowed."""


@dataclass(slots=True, frozen=True)
class DeviceCredential:
    """One device's login: username (its MAC, 12 hex digits), optional ESPHome name, the password's ``$7$`` hash."""

    username: str
    mac: str
    password_hash: str
    created: float
    esphome_name: str | None = None

    def public(self) -> dict[str, object]:
        """What ``hub device credentials list`` shows (never the hash)."""
        return {
            "username": self.username,
            "mac": self.mac,
            "esphome_name": self.esphome_name,
            "created": self.created,
        }


def username_for(mac: str) -> str:
    """The username (and topic spelling) of the device with this MAC: ``aabbccddeeff``; InvalidMac otherwise."""
    return normalize_mac(mac).replace(":", "")


def new_password() -> str:
    """A fresh device password: 32 URL-safe characters (192 random bits)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512 as mosquitto_passwd writes it."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"{PBKDF2_PREFIX}{iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_pbkdf2(password_hash: str, password: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (ours or mosquitto_passwd's); False for anything malformed."""
    try:
        _, kind, iterations, salt, digest = password_hash.split("$")
        expected = base64.b64decode(digest, validate=True)
        rounds = int(iterations)
        if kind != "7" or not 1 <= rounds <= 1_000_000:
            return False
        actual = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt, validate=True), rounds)
    except (ValueError, UnicodeError):
        return False
    return hmac.compare_digest(actual, expected)


_FILE_SCHEMA = vol.Schema(
    {
        vol.Required("version"): FORMAT_VERSION,
        vol.Required("devices"): [
            {
                vol.Required("username"): str,
                vol.Required("mac"): str,
                vol.Required("password_hash"): vol.All(str, vol.Match(r"^\$7\$")),
                vol.Required("created"): vol.Any(int, float),
                vol.Optional("esphome_name", default=None): vol.Any(None, str),
            }
        ],
    }
)


class CredentialStore:
    """The devices' credentials, in memory and in the file; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.devices: dict[str, DeviceCredential] = {}
        """By username."""
        self._stamp: tuple[int, int, int] | None = None

    @classmethod
    def in_dir(cls, data_dir: Path) -> CredentialStore:
        """The store of a hub whose data directory is ``data_dir``, loaded."""
        store = cls(Path(data_dir) / FILE_NAME)
        store.reload_if_changed()
        return store

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed since we last read or wrote it (one ``stat``); True when it did."""
        stamp = file_stamp(self.path)
        if stamp == self._stamp:
            return False
        self.devices = self._load()
        self._stamp = stamp
        return True

    def _load(self) -> dict[str, DeviceCredential]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise CredentialsError(f"cannot read {self.path}: {err}") from err
        try:
            data = _FILE_SCHEMA(orjson.loads(raw))
        except (orjson.JSONDecodeError, vol.Invalid) as err:
            raise CredentialsError(f"{self.path} is damaged ({err}); restore it from a backup") from err
        return {entry["username"]: DeviceCredential(**entry) for entry in data["devices"]}

    def by_esphome_name(self, name: str) -> DeviceCredential | None:
        """The device bound to this ESPHome node name, if any."""
        return next((device for device in self.devices.values() if device.esphome_name == name), None)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock (across processes) for a read-modify-write of it or of files made from it."""
        with file_lock(self.path):
            yield

    @contextmanager
    def transaction(self) -> Iterator[CredentialStore]:
        """Lock the file, bring memory up to date, let the caller change :attr:`devices`, then write atomically."""
        with self.locked():
            self.reload_if_changed()
            yield self
            self._write()

    def _write(self) -> None:
        data = {"version": FORMAT_VERSION, "devices": [asdict(device) for device in self.devices.values()]}
        self._stamp = write_private_json(self.path, data)
