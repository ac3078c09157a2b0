"""The firmware catalogue: images in the :class:`~hub_ota.store.FirmwareStore` and their rows in ``ota_firmware``.

An upload streams into the store's writer (size limit, format and hashes checked chunk by chunk), is named by its
SHA-256 once complete, and only then gets its row, in one transaction that also applies the version rules of
:mod:`hub_ota.versions`. If the row cannot be written (a version conflict, the database gone) a file this upload
created is removed again, so the store and the table agree: nothing half-written. A process killed between the
two leaves a file without a row; :meth:`FirmwareCatalogue.reconcile` removes such files at the next start.

Uploads are serialised in this process (the step from "file stored" to "row written" is short), so two uploads of
the same bytes cannot remove each other's file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa

from hub import Database, EventBus

from .chips import normalize_chip
from .errors import FirmwareNotFound, InvalidFirmware, VersionConflict
from .events import EVENT_OTA_FIRMWARE_CHANGED, OtaFirmwareChangedData
from .image import CHUNK_SIZE
from .schema import firmware as firmware_table
from .store import FirmwareStore, ImageWriter, StoredImage, check_digest, check_upload_name
from .versions import check_new_image, resolve_version

_LOGGER = logging.getLogger(__name__)

ORPHAN_AGE = 3600.0
"""Seconds a stored file without a row must be old before :meth:`FirmwareCatalogue.reconcile` removes it (a younger
one may be an upload another process is just finishing)."""


@dataclass(frozen=True, slots=True)
class Firmware:
    """One catalogue row."""

    sha256: str
    version: str
    chip: str
    project: str | None
    size: int
    md5: str
    name: str | None
    uploaded_by: str
    uploaded_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FirmwareCatalogue:
    """The catalogue of one hub: see the module docstring."""

    def __init__(self, database: Database, store: FirmwareStore, bus: EventBus, clock: Callable[[], float]) -> None:
        self.database = database
        self.store = store
        self._bus = bus
        self._clock = clock
        self._lock = asyncio.Lock()

    def upload(self, *, name: str | None = None) -> Upload:
        """A streamed upload: ``write`` chunks, then ``await finish(…)``; use it as a context manager.

        ``name`` is the uploaded file's name, kept as metadata only and refused (:class:`UnsafeName`) if it
        looks like a path.
        """
        return Upload(self, check_upload_name(name) if name else None)

    async def add_file(
        self, path: os.PathLike[str] | str, *, version: str | None, by: str, chip: str | None = None
    ) -> tuple[Firmware, bool]:
        """Add the image at ``path`` (``hub firmware add``); returns the row and whether it is new."""
        with open(path, "rb") as stream, self.upload(name=Path(path).name) as upload:
            while chunk := await asyncio.to_thread(stream.read, CHUNK_SIZE):
                upload.write(chunk)
            return await upload.finish(version=version, chip=chip, by=by)

    async def list(self) -> list[Firmware]:
        """Every image, newest upload first."""
        query = sa.select(firmware_table).order_by(firmware_table.c.uploaded_at.desc(), firmware_table.c.version)
        async with self.database.connect() as conn:
            return [Firmware(**row._mapping) for row in await conn.execute(query)]

    async def get(self, sha256: str) -> Firmware:
        """The row of the image with that digest; :class:`FirmwareNotFound` (or :class:`UnsafeName`) otherwise."""
        check_digest(sha256)
        return await self._one(firmware_table.c.sha256 == sha256, f"no firmware {sha256}")

    async def find(self, reference: str) -> Firmware:
        """The image named by its SHA-256 or its version; :class:`FirmwareNotFound` otherwise."""
        if len(reference) == 64 and all(c in "0123456789abcdef" for c in reference):
            return await self.get(reference)
        return await self._one(firmware_table.c.version == reference, f"no firmware with version {reference!r}")

    async def remove(self, sha256: str, *, by: str) -> Firmware:
        """Delete the row, then the file; :class:`FirmwareNotFound` if there is no such image."""
        row = await self.get(sha256)
        async with self._lock:
            async with self.database.begin() as conn:
                await conn.execute(sa.delete(firmware_table).where(firmware_table.c.sha256 == sha256))
            await asyncio.to_thread(self.store.remove, sha256)
        _LOGGER.info("Firmware %s (%s) removed by %s", row.version, sha256[:12], by)
        self._announce("removed", row, by)
        return row

    async def reconcile(self) -> int:
        """Remove stored files that have no row and are older than :data:`ORPHAN_AGE`; returns how many."""
        async with self.database.connect() as conn:
            known = set((await conn.execute(sa.select(firmware_table.c.sha256))).scalars())
        removed = 0
        cutoff = time.time() - ORPHAN_AGE
        for path in self.store.directory.iterdir():
            if path.name in known or path.name not in self.store or path.stat().st_mtime > cutoff:
                continue
            self.store.remove(path.name)
            removed += 1
            _LOGGER.warning("Removed firmware file %s: no catalogue row (an upload interrupted by a crash)", path)
        return removed

    async def _one(self, condition: Any, missing: str) -> Firmware:
        async with self.database.connect() as conn:
            row = (await conn.execute(sa.select(firmware_table).where(condition))).first()
        if row is None:
            raise FirmwareNotFound(missing)
        return Firmware(**row._mapping)

    async def _commit(
        self, writer: ImageWriter, chip: str | None, version: str | None, name: str | None, by: str
    ) -> tuple[Firmware, bool]:
        async with self._lock:
            stored = await asyncio.to_thread(writer.commit)
            try:
                return await self._record(stored, chip, version, name, by)
            except BaseException:
                if stored.created:
                    await asyncio.to_thread(self.store.remove, stored.sha256)
                raise

    async def _record(
        self, stored: StoredImage, chip: str | None, version: str | None, name: str | None, by: str
    ) -> tuple[Firmware, bool]:
        info = stored.info
        if chip is not None and info.chip != chip:
            raise InvalidFirmware(f"built for {info.chip}, target is {chip}")
        resolved = resolve_version(version, info)
        table = firmware_table
        async with self.database.begin() as conn:
            query = sa.select(table.c.version, table.c.sha256).where(
                (table.c.version == resolved) | (table.c.sha256 == info.sha256)
            )
            known = {row.version: row.sha256 for row in await conn.execute(query)}
            if check_new_image(resolved, info.sha256, known):
                existing = (await conn.execute(sa.select(table).where(table.c.sha256 == info.sha256))).one()
                return Firmware(**existing._mapping), False
            row = Firmware(
                sha256=info.sha256,
                version=resolved,
                chip=info.chip,
                project=info.project,
                size=info.size,
                md5=info.md5,
                name=name,
                uploaded_by=by,
                uploaded_at=self._clock(),
            )
            try:
                await conn.execute(sa.insert(table).values(**row.as_dict()))
            except sa.exc.IntegrityError:  # another process took the version or the bytes meanwhile
                raise VersionConflict(f"version {resolved} or these bytes were just added by someone else") from None
        _LOGGER.info(
            "Firmware %s (%s, %s, %d bytes) uploaded by %s", resolved, info.sha256[:12], info.chip, info.size, by
        )
        self._announce("added", row, by)
        return row, True

    def _announce(self, action: str, row: Firmware, by: str) -> None:
        changed: OtaFirmwareChangedData = {"action": action, "firmware": row.as_dict(), "by": by}
        self._bus.fire(EVENT_OTA_FIRMWARE_CHANGED, changed)


class Upload:
    """One upload into the catalogue (see :meth:`FirmwareCatalogue.upload`)."""

    def __init__(self, catalogue: FirmwareCatalogue, name: str | None) -> None:
        self._catalogue = catalogue
        self.name = name
        self._writer = catalogue.store.writer()

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._writer.size

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append a chunk: :class:`FirmwareTooLarge` past the limit, :class:`InvalidFirmware` at the first bad byte."""
        self._writer.write(chunk)

    async def finish(self, *, version: str | None, by: str, chip: str | None = None) -> tuple[Firmware, bool]:
        """Complete the upload and record it; returns the row and whether it is new (False: the same version and
        bytes were there already).

        ``version`` None takes the image's own; ``chip`` (any spelling) is the family the image must be built for.
        """
        target = normalize_chip(chip) if chip else None
        return await self._catalogue._commit(self._writer, target, version, self.name, by)

    def abort(self) -> None:
        """Discard the upload unless it finished (safe to call more than once)."""
        self._writer.abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()
