"""A content-addressed firmware store: one file per image, named by its SHA-256, in one directory.

An image is validated while it is written (one pass: size limit, format, hashes), into a temporary file in the
same directory that is flushed, fsynced and only then renamed to ``<sha256>``; the directory is fsynced after
the rename. So a file named by a digest is always complete and valid, and an upload that fails in any way —
too large, not an image, the connection dropped, the process killed — leaves no ``<sha256>`` file behind
(a crash may leave a ``.upload-*`` temporary, removed when the store is next opened).

Nothing a user supplies is ever used as a path: files are named by the digest the store computed, lookups
accept only a well-formed digest (:func:`check_digest`), and an uploaded file's name is only ever metadata,
checked by :func:`check_upload_name`. Which version an image is, who uploaded it and when belong in the
database, not here. Files are private to the hub's user (mode 0600): firmware often embeds Wi-Fi credentials.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from .config import DEFAULT_MAX_IMAGE_SIZE
from .errors import FirmwareNotFound, FirmwareTooLarge, UnsafeName
from .image import CHUNK_SIZE, ImageInfo, ImageValidator

MAX_NAME_LENGTH = 255

_TEMP_PREFIX = ".upload-"
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An image in the store. ``created`` is False when identical bytes were already there."""

    path: Path
    info: ImageInfo
    created: bool

    @property
    def sha256(self) -> str:
        return self.info.sha256


class FirmwareStore:
    """The images in ``directory`` (created if missing). Use one store per directory.

    ``max_size`` bounds every image in bytes; ``target`` on :meth:`put`/:meth:`writer` is the chip family the
    image must be built for (None accepts any).
    """

    def __init__(self, directory: os.PathLike[str] | str, *, max_size: int = DEFAULT_MAX_IMAGE_SIZE) -> None:
        self.directory = Path(directory)
        self.max_size = max_size
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob(f"{_TEMP_PREFIX}*"):
            leftover.unlink(missing_ok=True)

    def put(
        self, source: bytes | bytearray | memoryview | os.PathLike[str] | str | BinaryIO, *, target: str | None = None
    ) -> StoredImage:
        """Validate and store an image given as bytes, a file path, or an open binary file read in blocks.

        Raises :class:`FirmwareTooLarge` past ``max_size`` (a file is refused by its size before it is read),
        :class:`InvalidFirmware` for anything else wrong; nothing is kept then. Storing the same bytes twice is
        harmless and returns ``created=False``.
        """
        if isinstance(source, bytes | bytearray | memoryview):
            with self.writer(target=target) as writer:
                writer.write(source)
                return writer.commit()
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as stream:
                _check_size(os.fstat(stream.fileno()).st_size, self.max_size)
                return self._put_stream(stream, target)
        return self._put_stream(source, target)

    def writer(self, *, target: str | None = None) -> ImageWriter:
        """An incremental upload (``write`` chunks as they arrive, then ``commit``); use it as a context manager."""
        return ImageWriter(self, target)

    def path(self, sha256: str) -> Path:
        """The file of a stored image; :class:`FirmwareNotFound` if it is not there."""
        path = self.directory / check_digest(sha256)
        if not path.is_file():
            raise FirmwareNotFound(f"no firmware image {sha256}")
        return path

    def open(self, sha256: str) -> BinaryIO:
        """A stored image opened for reading (binary); :class:`FirmwareNotFound` if it is not there."""
        try:
            return open(self.directory / check_digest(sha256), "rb")
        except FileNotFoundError:
            raise FirmwareNotFound(f"no firmware image {sha256}") from None

    def remove(self, sha256: str) -> bool:
        """Delete a stored image; False if it was not there."""
        try:
            (self.directory / check_digest(sha256)).unlink()
        except FileNotFoundError:
            return False
        _fsync_directory(self.directory)
        return True

    def __contains__(self, sha256: object) -> bool:
        return isinstance(sha256, str) and _DIGEST.fullmatch(sha256) is not None and (self.directory / sha256).is_file()

    def _put_stream(self, stream: BinaryIO, target: str | None) -> StoredImage:
        with self.writer(target=target) as writer:
            while chunk := stream.read(CHUNK_SIZE):
                writer.write(chunk)
            return writer.commit()


class ImageWriter:
    """One upload into a :class:`FirmwareStore`: validated and size-checked chunk by chunk.

    Leaving the ``with`` block without :meth:`commit` (an exception, an abandoned upload) deletes the
    temporary file, so nothing of it remains.
    """

    def __init__(self, store: FirmwareStore, target: str | None) -> None:
        self._store = store
        self._validator = ImageValidator(target)
        fd, name = tempfile.mkstemp(dir=store.directory, prefix=_TEMP_PREFIX)
        self._temp = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._validator.size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append a chunk; raises (and discards the upload) when it breaks the size limit or the format."""
        if self._file is None:
            raise ValueError("this upload is already committed or aborted")
        try:
            _check_size(self._validator.size + len(data), self._store.max_size)
            self._validator.feed(data)
            self._file.write(data)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> StoredImage:
        """Finish the upload: check the image is complete, make it durable, and name it by its SHA-256."""
        if self._file is None:
            raise ValueError("this upload is already committed or aborted")
        try:
            info = self._validator.finish()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            final = self._store.directory / info.sha256
            created = not final.exists()
            if created:
                os.replace(self._temp, final)
                _fsync_directory(self._store.directory)
            else:
                self._temp.unlink()
        except BaseException:
            self.abort()
            raise
        return StoredImage(final, info, created)

    def abort(self) -> None:
        """Discard the upload (safe to call more than once)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.abort()


def check_digest(sha256: str) -> str:
    """``sha256`` if it is 64 lowercase hex digits (the only names the store has), else :class:`UnsafeName`."""
    if not isinstance(sha256, str) or _DIGEST.fullmatch(sha256) is None:
        raise UnsafeName(f"not a SHA-256 digest: {sha256!r}")
    return sha256


def check_upload_name(name: str) -> str:
    """An uploaded file's name, kept as metadata only, if it is a plain file name; else :class:`UnsafeName`.

    Refused: empty, ``.``/``..``, any ``/`` or ``\\`` (so no absolute path and no traversal on any OS), NUL or
    other control characters, and names over 255 characters.
    """
    if not name or name in (".", ".."):
        raise UnsafeName(f"not a file name: {name!r}")
    if "/" in name or "\\" in name:
        raise UnsafeName(f"a file name, not a path, is expected: {name!r}")
    if not name.isprintable():
        raise UnsafeName(f"control characters in file name {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise UnsafeName(f"file name longer than {MAX_NAME_LENGTH} characters")
    return name


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise FirmwareTooLarge(f"too large: over the limit of {limit} bytes")


def _fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
