"""Mosquitto's password file and ACL file, edited in place for ``hub device credentials``.

Only the lines the hub owns change: a device's ``username:hash`` line in the
password file (other accounts, such as the hub's own made with
``mosquitto_passwd``, stay as they are), and the block between the markers of
:mod:`.acl` in the ACL file (added at the end when missing).  Each file is
replaced atomically and keeps its owner and mode, since Mosquitto re-reads them
as its own user on a reload.  Mosquitto reads both only at start and on SIGHUP
(``systemctl reload mosquitto``), which the CLI reminds of.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .acl import BLOCK_BEGIN, BLOCK_END
from .credentials import CredentialsError


def _read(path: Path, how_to_create: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialsError(f"{path} does not exist: {how_to_create}") from None
    except OSError as err:
        raise CredentialsError(f"cannot read {path}: {err}") from err


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, keeping the file's owner and mode."""
    info = os.stat(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, info.st_mode & 0o7777)
        if (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
            os.chown(temporary, info.st_uid, info.st_gid)
        os.replace(temporary, path)
    except OSError as err:
        temporary.unlink(missing_ok=True)
        raise CredentialsError(f"cannot write {path}: {err}") from err


def update_password_file(path: Path, hashes: Mapping[str, str], removed: Iterable[str] = ()) -> None:
    """Set ``username:hash`` for each of ``hashes`` and drop the lines of ``removed``; other lines are kept."""
    text = _read(path, f"create it with the hub's account first: mosquitto_passwd -c {path} hub")
    gone, pending, lines = set(removed), dict(hashes), []
    for line in text.splitlines():
        username = line.split(":", 1)[0] if ":" in line and not line.startswith("#") else None
        if username in gone:
            continue
        if username in pending:
            line = f"{username}:{pending.pop(username)}"
        lines.append(line)
    lines += [f"{username}:{password_hash}" for username, password_hash in pending.items()]
    _replace(path, "\n".join(lines) + "\n")


def update_acl_file(path: Path, block: str) -> None:
    """Put ``block`` (from :func:`.acl.mosquitto_block`) between the markers, or append it when they are missing."""
    text = _read(path, "install deploy/mosquitto.acl there first")
    begin, end = text.find(BLOCK_BEGIN), text.find(BLOCK_END)
    if begin == -1 or end == -1 or end < begin:
        new = text + ("" if text.endswith("\n") or not text else "\n") + block
    else:
        after = text.find("\n", end)
        new = text[:begin] + block + (text[after + 1 :] if after != -1 else "")
    _replace(path, new)
