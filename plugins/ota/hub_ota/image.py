"""Validate an ESP32 application image (what ESP-IDF's ``esptool elf2image`` writes) in one streaming pass.

The format (ESP-IDF "App Image Format", ``esp_app_format.h``; esptool ``bin_image.py``), little-endian::

    esp_image_header_t (24 bytes)
        u8 magic 0xE9, u8 segment_count (1..16), u8 spi_mode (0..5), u8 spi_speed:4 | spi_size:4 << 4,
        u32 entry_addr, u8 wp_pin, u8 spi_pin_drv[3], u16 chip_id, u8 min_chip_rev,
        u16 min_chip_rev_full, u16 max_chip_rev_full, u8 reserved[4], u8 hash_appended (0 or 1)
    segment_count × (u32 load_addr, u32 data_len (multiple of 4, < 16 MiB), data_len bytes)
    zero padding, then one checksum byte, so that the image so far is a multiple of 16 bytes;
        checksum = 0xEF XOR every byte of every segment's data
    if hash_appended: SHA-256 of everything before it (32 bytes)
    anything after that (a secure-boot signature block, flash padding) is kept but not interpreted

The first segment starts with the application description (:mod:`hub_ota.appdesc`).

:class:`ImageValidator` is a push parser: feed it chunks as they arrive (an HTTP upload, a file read in
blocks) and it fails on the first bad byte it can judge, keeping only header fields and the app description; it
computes the file's SHA-256 and MD5 on the way, and the appended-hash check reuses the running SHA-256 rather
than hashing twice. esptool itself is not used here: it loads whole files and is GPL-licensed.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from enum import Enum, auto
from typing import BinaryIO

from .appdesc import APP_DESC_SIZE, parse_app_description
from .chips import CHIP_NAMES, normalize_chip
from .errors import InvalidFirmware

IMAGE_MAGIC = 0xE9
CHECKSUM_SEED = 0xEF
MAX_SEGMENTS = 16
MAX_SEGMENT_LENGTH = 16 * 1024 * 1024
"""ESP-IDF refuses a segment of 16 MiB or more (``SIXTEEN_MB`` in ``esp_image_format.c``)."""
SPI_FREQUENCY_CODES = frozenset({0x0, 0x1, 0x2, 0xF})
"""``esp_image_spi_freq_t``: clock divided by 2, 3, 4, or undivided."""
MAX_SPI_MODE = 5
"""``esp_image_spi_mode_t``: QIO, QOUT, DIO, DOUT, FAST_READ, SLOW_READ."""
MAX_SPI_SIZE = 7
"""``esp_image_flash_size_t``: 1 MB … 128 MB."""
CHUNK_SIZE = 64 * 1024

_HEADER = struct.Struct("<BBBBIB3sHBHH4sB")
_SEGMENT_HEADER = struct.Struct("<II")
_DIGEST_SIZE = 32


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: where it is loaded or mapped, its length, and where its data starts in the file."""

    load_address: int
    length: int
    file_offset: int


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """A valid image and what it says about itself.

    ``version``, ``project`` and the other description fields are None when the image has no application
    description (``version``/``project`` also when the description leaves them empty).
    """

    chip: str
    size: int
    """Bytes in the file, trailing data included."""
    sha256: str
    md5: str
    segments: tuple[Segment, ...]
    entry_address: int
    spi_mode: int
    spi_speed: int
    spi_size: int
    min_chip_revision: int
    """Minimum chip revision the image runs on, as major × 100 + minor."""
    max_chip_revision: int
    hash_appended: bool
    image_length: int
    """Bytes the format accounts for (through the appended SHA-256); ``size`` minus this is trailing data."""
    version: str | None
    project: str | None
    secure_version: int | None
    idf_version: str | None
    compiled: str | None
    """Build date and time as the firmware records them (``"Mar  3 2025 14:02:11"``)."""


class _Part(Enum):
    """Which part of the image the next byte belongs to."""

    HEADER = auto()
    SEGMENT_HEADER = auto()
    SEGMENT_DATA = auto()
    FOOTER = auto()
    DIGEST = auto()
    TRAILER = auto()


class ImageValidator:
    """Checks an image fed in chunks; :meth:`finish` returns its :class:`ImageInfo` or raises.

    ``target`` (any spelling of a chip family, e.g. ``"esp32"``, ``"ESP32-S3"``) is the chip the image must be
    built for; None accepts any known ESP32-family chip. After the first :class:`InvalidFirmware`, every
    further call raises the same error.
    """

    def __init__(self, target: str | None = None) -> None:
        self._target = normalize_chip(target) if target is not None else None
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0
        self._error: InvalidFirmware | None = None
        self._part = _Part.HEADER
        self._part_end = _HEADER.size
        self._remaining = _HEADER.size
        self._buffer = bytearray()
        self._segment_count = 0
        self._segments: list[Segment] = []
        self._checksum = CHECKSUM_SEED
        self._first_segment = bytearray()
        self._header: tuple[int, ...] = ()
        self._chip = ""
        self._image_digest = b""
        self._image_length = 0

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take the next bytes of the file; raises :class:`InvalidFirmware` as soon as they prove it bad."""
        self._raise_if_failed()
        view = memoryview(data).cast("B")
        try:
            while view:
                taken = self._take(view)
                piece = view[:taken]
                self._sha256.update(piece)
                self._md5.update(piece)
                self._size += taken
                view = view[taken:]
                while self._remaining == 0:
                    self._complete_part()
        except InvalidFirmware as err:
            self._error = err
            raise

    def finish(self) -> ImageInfo:
        """The end of the file: raises :class:`InvalidFirmware` if it came too early, else the image's info."""
        self._raise_if_failed()
        if self._part is not _Part.TRAILER:
            self._error = InvalidFirmware(self._truncation())
            raise self._error
        return self._info()

    # --- parsing -------------------------------------------------------------------------------------------

    def _take(self, view: memoryview) -> int:
        """Consume bytes of the current part from ``view``; returns how many."""
        if self._part is _Part.TRAILER:
            return len(view)
        taken = min(self._remaining, len(view))
        piece = view[:taken]
        if self._part is _Part.SEGMENT_DATA:
            self._checksum ^= _xor_bytes(piece)
            if len(self._segments) == 1 and len(self._first_segment) < APP_DESC_SIZE:
                self._first_segment += piece[: APP_DESC_SIZE - len(self._first_segment)]
        else:
            if self._size == 0 and piece[0] != IMAGE_MAGIC:
                raise InvalidFirmware(f"not an ESP32 image: first byte {piece[0]:#04x}, expected {IMAGE_MAGIC:#04x}")
            self._buffer += piece
        self._remaining -= taken
        return taken

    def _complete_part(self) -> None:
        """The current part is complete: check it and move on to the next."""
        part, data = self._part, bytes(self._buffer)
        self._buffer.clear()
        if part is _Part.HEADER:
            self._check_header(data)
            self._enter(_Part.SEGMENT_HEADER, _SEGMENT_HEADER.size)
        elif part is _Part.SEGMENT_HEADER:
            self._check_segment_header(data)
        elif part is _Part.SEGMENT_DATA:
            self._end_segment()
        elif part is _Part.FOOTER:
            self._check_checksum(data[-1])
        elif part is _Part.DIGEST:
            if data != self._image_digest:
                raise InvalidFirmware("appended SHA-256 does not match")
            self._enter(_Part.TRAILER, -1)

    def _enter(self, part: _Part, length: int) -> None:
        self._part, self._part_end, self._remaining = part, self._size + length, length

    def _check_header(self, data: bytes) -> None:
        self._header = header = _HEADER.unpack(data)
        _magic, count, spi_mode, speed_size, _entry, _wp, _drv, chip_id, _rev, _min, _max, _res, appended = header
        if not 1 <= count <= MAX_SEGMENTS:
            raise InvalidFirmware(f"bad segment count {count}, expected 1..{MAX_SEGMENTS}")
        if spi_mode > MAX_SPI_MODE:
            raise InvalidFirmware(f"bad SPI flash mode {spi_mode}, expected 0..{MAX_SPI_MODE}")
        if speed_size >> 4 > MAX_SPI_SIZE:
            raise InvalidFirmware(f"bad SPI flash size code {speed_size >> 4}, expected 0..{MAX_SPI_SIZE}")
        if speed_size & 0xF not in SPI_FREQUENCY_CODES:
            raise InvalidFirmware(f"bad SPI flash frequency code {speed_size & 0xF}, expected 0, 1, 2 or 15")
        if appended not in (0, 1):
            raise InvalidFirmware(f"bad hash_appended flag {appended:#04x}, expected 0 or 1")
        chip = CHIP_NAMES.get(chip_id)
        if chip is None:
            raise InvalidFirmware(f"unknown chip id {chip_id} in the image header")
        if self._target is not None and chip != self._target:
            raise InvalidFirmware(f"built for {chip}, target is {self._target}")
        self._segment_count, self._chip = count, chip

    def _check_segment_header(self, data: bytes) -> None:
        load_address, length = _SEGMENT_HEADER.unpack(data)
        index = len(self._segments)
        if length >= MAX_SEGMENT_LENGTH:
            raise InvalidFirmware(f"segment {index} length {length} is 16 MiB or more")
        if length % 4:
            raise InvalidFirmware(f"segment {index} length {length} is not a multiple of 4")
        self._segments.append(Segment(load_address, length, self._size))
        self._enter(_Part.SEGMENT_DATA, length)

    def _end_segment(self) -> None:
        if len(self._segments) < self._segment_count:
            self._enter(_Part.SEGMENT_HEADER, _SEGMENT_HEADER.size)
            return
        # Pad so that the checksum byte is the last of a 16-byte block.
        self._enter(_Part.FOOTER, 16 - self._size % 16)

    def _check_checksum(self, stored: int) -> None:
        if stored != self._checksum:
            raise InvalidFirmware(f"checksum {stored:#04x} does not match the segments' {self._checksum:#04x}")
        self._image_length = self._size
        if self._header[-1]:
            self._image_digest = self._sha256.copy().digest()
            self._enter(_Part.DIGEST, _DIGEST_SIZE)
        else:
            self._enter(_Part.TRAILER, -1)

    # --- results -------------------------------------------------------------------------------------------

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _truncation(self) -> str:
        """Why a file that ended in ``self._part`` is incomplete."""
        size, end = self._size, self._part_end
        if size == 0:
            return "empty file"
        index = len(self._segments) - (self._part is _Part.SEGMENT_DATA)
        what = {
            _Part.HEADER: "image header",
            _Part.SEGMENT_HEADER: f"segment {index} header",
            _Part.SEGMENT_DATA: f"segment {index}",
            _Part.FOOTER: "checksum",
            _Part.DIGEST: "appended SHA-256",
        }[self._part]
        return f"truncated: {what} ends at {end}, file is {size} bytes"

    def _info(self) -> ImageInfo:
        _magic, _count, spi_mode, speed_size, entry, _wp, _drv, _chip_id, _rev, min_rev, max_rev, _res, appended = (
            self._header
        )
        app = parse_app_description(bytes(self._first_segment))
        return ImageInfo(
            chip=self._chip,
            size=self._size,
            sha256=self._sha256.hexdigest(),
            md5=self._md5.hexdigest(),
            segments=tuple(self._segments),
            entry_address=entry,
            spi_mode=spi_mode,
            spi_speed=speed_size & 0xF,
            spi_size=speed_size >> 4,
            min_chip_revision=min_rev,
            max_chip_revision=max_rev,
            hash_appended=bool(appended),
            image_length=self._image_length + (_DIGEST_SIZE if appended else 0),
            version=(app.version or None) if app else None,
            project=(app.project or None) if app else None,
            secure_version=app.secure_version if app else None,
            idf_version=app.idf_version if app else None,
            compiled=f"{app.compile_date} {app.compile_time}" if app else None,
        )


def _xor_bytes(data: memoryview) -> int:
    """XOR of every byte, computed by folding one big integer in halves (C speed, not a Python loop per byte)."""
    value, width = int.from_bytes(data, "little"), len(data)
    while width > 1:
        half = (width + 1) // 2
        value = (value & ((1 << (8 * half)) - 1)) ^ (value >> (8 * half))
        width = half
    return value


def validate_image(
    source: bytes | bytearray | memoryview | os.PathLike[str] | str | BinaryIO, *, target: str | None = None
) -> ImageInfo:
    """Validate an image given as bytes, a file path or an open binary file (read in blocks)."""
    validator = ImageValidator(target)
    if isinstance(source, bytes | bytearray | memoryview):
        validator.feed(source)
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            _feed_stream(validator, stream)
    else:
        _feed_stream(validator, source)
    return validator.finish()


def _feed_stream(validator: ImageValidator, stream: BinaryIO) -> None:
    while chunk := stream.read(CHUNK_SIZE):
        validator.feed(chunk)
