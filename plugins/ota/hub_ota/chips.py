"""ESP32-family chip names and the chip ids application images carry in their extended header.

The ids are ESP-IDF's ``esp_chip_id_t`` (``esp_app_format.h``) and esptool's ``IMAGE_CHIP_ID``; the test suite
checks this table against the installed esptool. Names are kept in one canonical spelling (``esp32s3``) and
accepted in the others people write (``ESP32-S3``, ``esp32_s3``), so a target from config, a CLI flag or an
ESPHome manifest's ``chipFamily`` all compare equal.
"""

from __future__ import annotations

import re

from .errors import UnknownChip

CHIP_IDS: dict[str, int] = {
    "esp32": 0,
    "esp32s2": 2,
    "esp32c3": 5,
    "esp32s3": 9,
    "esp32c2": 12,
    "esp32c6": 13,
    "esp32h2": 16,
    "esp32p4": 18,
    "esp32c61": 20,
    "esp32c5": 23,
    "esp32h21": 25,
    "esp32h4": 28,
}
"""Canonical chip name → ``chip_id`` of its application images."""

CHIP_NAMES: dict[int, str] = {chip_id: name for name, chip_id in CHIP_IDS.items()}
"""``chip_id`` → canonical chip name."""

_SPELLING = re.compile(r"[\s_-]")


def normalize_chip(name: str) -> str:
    """The canonical name of a chip family (``"ESP32-S3"`` → ``"esp32s3"``); :class:`UnknownChip` if unknown."""
    canonical = _SPELLING.sub("", name).lower()
    if canonical not in CHIP_IDS:
        known = ", ".join(CHIP_IDS)
        raise UnknownChip(f"unknown chip family {name!r} (known: {known})")
    return canonical
