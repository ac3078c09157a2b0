"""Cross-checks against Espressif's esptool (the test extra installs it; skipped where it is missing).

Both directions: esptool's ``image-info`` reads the images the test builder makes exactly as the validator
does, and the validator accepts images esptool's own writer makes (with the padding segments it inserts).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from hub_ota.chips import CHIP_IDS
from hub_ota.image import validate_image
from ota_images import DROM_ADDRESS, app_description, build_image

pytest.importorskip("esptool", reason="esptool is not installed (pip install -e 'plugins/ota[test]')")
from esptool.bin_image import ELFSection, LoadFirmwareImage
from esptool.targets import CHIP_DEFS


def image_info(path: Path) -> dict[str, str]:
    """``esptool image-info`` as a dict of its ``key: value`` lines (esptool ≥ 5 prints every field)."""
    result = subprocess.run(
        [sys.executable, "-m", "esptool", "image-info", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)


def test_chip_ids_agree_with_esptool() -> None:
    theirs = {name: chip.IMAGE_CHIP_ID for name, chip in CHIP_DEFS.items() if hasattr(chip, "IMAGE_CHIP_ID")}
    for name, chip_id in CHIP_IDS.items():
        assert theirs[name] == chip_id, name


@pytest.mark.parametrize("chip", ["esp32", "esp32s2", "esp32s3", "esp32c3", "esp32c6", "esp32h2"])
def test_esptool_reads_the_built_images_as_the_validator_does(chip: str, tmp_path: Path) -> None:
    data = build_image("7.1.0-beta", chip=chip, project="greenhouse")
    path = tmp_path / "app.bin"
    path.write_bytes(data)
    ours = validate_image(path, target=chip)
    theirs = image_info(path)
    assert theirs["Chip ID"] == f"{CHIP_IDS[chip]} ({CHIP_DEFS[chip].CHIP_NAME})"
    assert theirs["Segments"] == str(len(ours.segments))
    assert theirs["Checksum"].endswith("(valid)")
    assert theirs["Validation hash"] == f"{hashlib.sha256(data[:-32]).hexdigest()} (valid)"
    assert (
        (theirs["App version"], theirs["Project name"]) == (ours.version, ours.project) == ("7.1.0-beta", "greenhouse")
    )
    assert theirs["ESP-IDF"] == ours.idf_version


@pytest.mark.parametrize("chip", ["esp32", "esp32c3"])
def test_esptool_sees_the_same_segments(chip: str) -> None:
    data = build_image(chip=chip, hash_appended=False)
    loaded = LoadFirmwareImage(chip, data)
    ours = validate_image(data)
    assert [(s.addr, len(s.data), s.file_offs + 8) for s in loaded.segments] == [
        (s.load_address, s.length, s.file_offset) for s in ours.segments
    ]
    assert loaded.checksum == loaded.calculate_checksum()


@pytest.mark.parametrize("chip", ["esp32", "esp32s3", "esp32c3"])
def test_the_validator_accepts_images_esptool_writes(chip: str) -> None:
    image = CHIP_DEFS[chip].BOOTLOADER_IMAGE()
    image.segments = [
        ELFSection(b".flash.appdesc", DROM_ADDRESS[chip], app_description("9.8.7", "esptool-built") + bytes(1024), 0),
        ELFSection(b".dram0.data", 0x3FFB0000 if chip == "esp32" else 0x3FC88000, bytes(range(256)) * 4, 0),
        ELFSection(b".flash.text", CHIP_DEFS[chip].IROM_MAP_START + 0x10020, b"\x01\x02\x03\x04" * 3000, 0),
    ]
    image.entrypoint = CHIP_DEFS[chip].IROM_MAP_START + 0x10100
    data = image.save(None)
    info = validate_image(data, target=chip)
    assert (info.version, info.project, info.hash_appended) == ("9.8.7", "esptool-built", True)
    assert len(info.segments) > 3  # esptool padded the flash-mapped segment to its 64 KiB page
    assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
