"""The application description (ESP-IDF's ``esp_app_desc_t``) at the start of an image's first segment.

ESP-IDF places it at a fixed offset (image header + first segment header = byte 32) precisely so that OTA code
can read an image's version and project before taking the rest. Every image ESP-IDF, Arduino-ESP32 or ESPHome
builds carries one; an image without the magic word simply has no description (its version must be declared
by whoever uploads it).

Layout (little-endian; 256 bytes in all, only the first 176 are read)::

    u32 magic_word (0xABCD5432)   u32 secure_version   u32 reserved[2]
    char version[32]   char project_name[32]   char time[16]   char date[16]   char idf_ver[32]
    u8 app_elf_sha256[32]   … reserved
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import InvalidFirmware

APP_DESC_MAGIC = 0xABCD5432
APP_DESC_SIZE = 256
"""``sizeof(esp_app_desc_t)``: how much of the first segment is kept for parsing."""

_LAYOUT = struct.Struct("<II8s32s32s16s16s32s32s")


@dataclass(frozen=True, slots=True)
class AppDescription:
    """What the firmware says about itself."""

    version: str
    project: str
    secure_version: int
    """Anti-rollback counter (eFuse-backed when the node enables it); 0 for most firmware."""
    compile_time: str
    compile_date: str
    idf_version: str
    elf_sha256: str
    """SHA-256 of the ELF file the image was made from (hex); all zeros when the build did not fill it in."""


def parse_app_description(first_segment: bytes) -> AppDescription | None:
    """The description at the start of ``first_segment``, or None when it does not start with one.

    Raises :class:`InvalidFirmware` when the magic word is there but a text field is not printable UTF-8: a
    version that cannot be shown or compared is not one to roll out.
    """
    if len(first_segment) < _LAYOUT.size:
        return None
    magic, secure_version, _reserved, version, project, time, date, idf_ver, elf_sha256 = _LAYOUT.unpack_from(
        first_segment
    )
    if magic != APP_DESC_MAGIC:
        return None
    return AppDescription(
        version=_text(version, "version"),
        project=_text(project, "project_name"),
        secure_version=secure_version,
        compile_time=_text(time, "time"),
        compile_date=_text(date, "date"),
        idf_version=_text(idf_ver, "idf_ver"),
        elf_sha256=elf_sha256.hex(),
    )


def _text(raw: bytes, field: str) -> str:
    """A NUL-terminated C string field, decoded; refused when it is not printable UTF-8."""
    try:
        text = raw.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidFirmware(f"app description: {field} is not UTF-8") from None
    if not text.isprintable():
        raise InvalidFirmware(f"app description: {field} {text!r} has control characters")
    return text
