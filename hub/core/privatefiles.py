"""Small JSON files only the hub's user may read (``auth.json``, the devices' broker credentials).

Several processes of one hub (``hub run`` and a CLI command, or an API instance and a worker) change
them, so each change is a locked read-modify-write (:func:`file_lock`), the new contents replace the old
atomically and durably (:func:`write_private_json`: mode 0600, fsync of the file and of its folder),
and a reader learns with one ``stat`` whether another process replaced the file (:func:`file_stamp`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

Stamp = tuple[int, int, int]
"""(inode, modification time in ns, size): changes whenever the file is replaced or rewritten."""


def file_stamp(path: Path) -> Stamp | None:
    """The file's stamp, or None when it does not exist."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` across processes (a ``.<name>.lock`` file beside it, never replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock_fd)  # closing releases the flock


def write_private_json(path: Path, data: Any) -> Stamp:
    """Replace ``path`` with ``data`` as indented JSON, mode 0600, atomically and durably; returns its new stamp.

    Call it under :func:`file_lock`: the temporary file is named by process, not by thread.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    info = os.stat(path)
    return (info.st_ino, info.st_mtime_ns, info.st_size)
