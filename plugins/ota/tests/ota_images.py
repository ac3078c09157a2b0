"""Build real ESP32 application images in tests, with any chip, version and project.

The images follow ESP-IDF's App Image Format byte for byte (header, extended header, segments, checksum,
appended SHA-256) and carry an ``esp_app_desc_t`` at the start of the first segment, which is loaded at the
chip's DROM address as ESP-IDF links it; ``test_ota_esptool.py`` checks that esptool reads them the same way.
The filler bytes are derived from the chip, version and ``seed``, so two builds with the same arguments are
identical and a different version gives different bytes.

Corrupting helpers (:func:`rehash`, :func:`checksum_offset`) let a test break one thing at a time.
"""

from __future__ import annotations

import hashlib
import random
import struct

from hub_ota.chips import CHIP_IDS

# Where ESP-IDF loads an app's first three kinds of segment, per chip (esptool 5.6's memory maps): the first
# segment (app description + rodata) at the DROM map start + 0x20, then one DRAM and one IROM segment.
DROM_ADDRESS = {
    "esp32": 0x3F400020,
    "esp32s2": 0x3F000020,
    "esp32s3": 0x3C000020,
    "esp32c3": 0x3C000020,
    "esp32c2": 0x3C000020,
    "esp32c6": 0x42800020,
    "esp32c61": 0x42800020,
    "esp32c5": 0x42000020,
    "esp32h2": 0x42800020,
    "esp32h21": 0x42000020,
    "esp32h4": 0x42000020,
    "esp32p4": 0x40000020,
}
DRAM_ADDRESS = {
    "esp32": 0x3FFB0000,
    "esp32s2": 0x3FFB0000,
    "esp32s3": 0x3FC88000,
    "esp32c3": 0x3FC80000,
    "esp32c2": 0x3FCA0000,
    "esp32c6": 0x40800000,
    "esp32c61": 0x40800000,
    "esp32c5": 0x40800000,
    "esp32h2": 0x40800000,
    "esp32h21": 0x40800000,
    "esp32h4": 0x40810000,
    "esp32p4": 0x4FF00000,
}
IROM_ADDRESS = {
    "esp32": 0x400D0020,
    "esp32s2": 0x40080020,
    "esp32s3": 0x42000020,
    "esp32c3": 0x42000020,
    "esp32c2": 0x42000020,
    "esp32c6": 0x42000020,
    "esp32c61": 0x42000020,
    "esp32c5": 0x42000020,
    "esp32h2": 0x42000020,
    "esp32h21": 0x42000020,
    "esp32h4": 0x42000020,
    "esp32p4": 0x40000020,
}

SPI_MODE_DIO = 2
SPI_SIZE_4MB = 2
SPI_SPEED_DIV_2 = 0  # 40 MHz on the ESP32
HEADER_SIZE = 24
DIGEST_SIZE = 32


def app_description(
    version: str = "1.0.0",
    project: str = "hub-test",
    *,
    secure_version: int = 0,
    time: str = "12:00:00",
    date: str = "Jan  1 2025",
    idf_version: str = "v5.3.1",
    elf_sha256: bytes = bytes(range(32)),
) -> bytes:
    """An ``esp_app_desc_t`` (256 bytes) as ESP-IDF fills it in; text fields longer than the C arrays are cut."""
    return struct.pack(
        "<II8s32s32s16s16s32s32s80s",
        0xABCD5432,
        secure_version,
        b"",
        version.encode()[:31],
        project.encode()[:31],
        time.encode()[:15],
        date.encode()[:15],
        idf_version.encode()[:31],
        elf_sha256,
        b"",
    )


def build_image(
    version: str | None = "1.0.0",
    *,
    chip: str = "esp32",
    project: str = "hub-test",
    payload: int = 4096,
    seed: int = 0,
    hash_appended: bool = True,
    segments: list[tuple[int, bytes]] | None = None,
    chip_id: int | None = None,
    spi_mode: int = SPI_MODE_DIO,
    spi_speed: int = SPI_SPEED_DIV_2,
    spi_size: int = SPI_SIZE_4MB,
    trailer: bytes = b"",
) -> bytes:
    """A valid application image.

    By default three segments: DROM (the app description for ``version``/``project``, or none when ``version``
    is None, then 256 bytes of rodata), DRAM (1 KiB) and IROM (``payload`` bytes, rounded up to 4). Pass
    ``segments`` as ``[(load_address, data), …]`` to choose them yourself. ``chip_id`` overrides the id written
    for ``chip``; ``trailer`` is appended after the image (as a secure-boot signature block would be).
    """
    if segments is None:
        filler = random.Random(f"{chip}/{version}/{project}/{seed}")
        description = app_description(version, project) if version is not None else filler.randbytes(256)
        segments = [
            (DROM_ADDRESS[chip], description + filler.randbytes(256)),
            (DRAM_ADDRESS[chip], filler.randbytes(1024)),
            (IROM_ADDRESS[chip], filler.randbytes(-(-payload // 4) * 4)),
        ]
    header = struct.pack(
        "<BBBBIB3sHBHH4sB",
        0xE9,
        len(segments),
        spi_mode,
        spi_size << 4 | spi_speed,
        IROM_ADDRESS.get(chip, 0x40080000) + 0x100,
        0xEE,
        b"\0\0\0",
        CHIP_IDS[chip] if chip_id is None else chip_id,
        0,
        0,
        399,
        b"\0\0\0\0",
        1 if hash_appended else 0,
    )
    body = bytearray(header)
    checksum = 0xEF
    for load_address, data in segments:
        body += struct.pack("<II", load_address, len(data)) + data
        for byte in data:
            checksum ^= byte
    body += bytes(15 - len(body) % 16) + bytes([checksum])
    if hash_appended:
        body += hashlib.sha256(body).digest()
    return bytes(body) + trailer


def checksum_offset(image: bytes, *, hash_appended: bool = True) -> int:
    """Where the checksum byte of an image from :func:`build_image` (without trailer) is."""
    return len(image) - 1 - (DIGEST_SIZE if hash_appended else 0)


def rehash(image: bytes) -> bytes:
    """``image`` (hash appended, no trailer) with its appended SHA-256 recomputed after a test changed it."""
    body = image[:-DIGEST_SIZE]
    return body + hashlib.sha256(body).digest()
