"""Validating ESP32 application images: what is accepted, what is read from it, and each way one is refused."""

from __future__ import annotations

import hashlib
import io
import struct
from pathlib import Path

import pytest
from hub_ota.chips import CHIP_IDS
from hub_ota.errors import InvalidFirmware, UnknownChip
from hub_ota.image import ImageValidator, validate_image
from ota_images import DRAM_ADDRESS, DROM_ADDRESS, app_description, build_image, checksum_offset, rehash

from hub import HubError


def refusal(data: bytes, target: str | None = "esp32") -> str:
    with pytest.raises(InvalidFirmware) as caught:
        validate_image(data, target=target)
    return str(caught.value)


@pytest.mark.parametrize("chip", sorted(CHIP_IDS))
def test_a_good_image_of_every_chip(chip: str) -> None:
    data = build_image("2.4.1", chip=chip, project="greenhouse")
    info = validate_image(data, target=chip)
    assert (info.chip, info.version, info.project) == (chip, "2.4.1", "greenhouse")
    assert info.size == info.image_length == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.md5 == hashlib.md5(data).hexdigest()
    assert info.hash_appended
    assert [segment.load_address for segment in info.segments][:2] == [DROM_ADDRESS[chip], DRAM_ADDRESS[chip]]


def test_what_is_read_from_the_headers_and_the_app_description() -> None:
    data = build_image("1.0.0", chip="esp32s3", payload=1000)
    info = validate_image(data)
    assert info.chip == "esp32s3"
    assert (info.spi_mode, info.spi_speed, info.spi_size) == (2, 0, 2)
    assert (info.min_chip_revision, info.max_chip_revision) == (0, 399)
    assert [(s.length, s.file_offset) for s in info.segments] == [(512, 32), (1024, 552), (1000, 1584)]
    assert (info.secure_version, info.idf_version, info.compiled) == (0, "v5.3.1", "Jan  1 2025 12:00:00")


@pytest.mark.parametrize("spelling", ["esp32c3", "ESP32-C3", "esp32_c3", "Esp32C3"])
def test_target_spellings(spelling: str) -> None:
    assert validate_image(build_image(chip="esp32c3"), target=spelling).chip == "esp32c3"


def test_without_target_any_known_chip_is_accepted() -> None:
    assert validate_image(build_image(chip="esp32h2")).chip == "esp32h2"


def test_unknown_target_is_its_own_error() -> None:
    with pytest.raises(UnknownChip, match="unknown chip family 'esp8266'"):
        validate_image(build_image(), target="esp8266")


def test_without_app_description_there_is_no_version() -> None:
    info = validate_image(build_image(None))
    assert info.version is None and info.project is None and info.idf_version is None


def test_without_appended_hash() -> None:
    data = build_image(hash_appended=False)
    info = validate_image(data)
    assert not info.hash_appended and info.image_length == len(data)


def test_trailing_data_is_kept_but_not_interpreted() -> None:
    data = build_image(trailer=b"\xff" * 4096)
    info = validate_image(data)
    assert info.size == len(data) and info.image_length == len(data) - 4096
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_zero_length_segments_and_checksum_on_a_16_byte_boundary() -> None:
    # 24 + 8 + 256 + 8 + 0 + 8 + 212 = 516 bytes of segments: 516 % 16 == 4, so 11 bytes of padding.
    segments = [(DROM_ADDRESS["esp32"], app_description("3.0")), (0x3FF80000, b""), (0x3FFB0000, bytes(212))]
    assert validate_image(build_image(segments=segments)).version == "3.0"
    # 24 + 8 + 256 + 8 + 216 = 512: a full block of padding before the checksum.
    segments = [(DROM_ADDRESS["esp32"], app_description("3.1")), (0x3FFB0000, bytes(216))]
    assert validate_image(build_image(segments=segments)).version == "3.1"


@pytest.mark.parametrize("chunk_size", [1, 7, 33, 4096])
def test_chunk_boundaries_do_not_matter(chunk_size: int) -> None:
    data = build_image("5.0.0", chip="esp32c6", trailer=b"sig" * 10)
    validator = ImageValidator("esp32c6")
    for start in range(0, len(data), chunk_size):
        validator.feed(data[start : start + chunk_size])
    assert validator.finish() == validate_image(data)


def test_from_a_path_and_from_an_open_file(tmp_path: Path) -> None:
    data = build_image("1.2.3")
    path = tmp_path / "app.bin"
    path.write_bytes(data)
    assert validate_image(path) == validate_image(str(path)) == validate_image(io.BytesIO(data)) == validate_image(data)


@pytest.mark.parametrize(
    ("first", "shown"),
    [(b"\x7fELF", "0x7f"), (b"PK\x03\x04", "0x50"), (b"\xea\x04", "0xea"), (b"<html>", "0x3c")],
)
def test_wrong_magic(first: bytes, shown: str) -> None:
    assert refusal(first + bytes(100)) == f"not an ESP32 image: first byte {shown}, expected 0xe9"


def test_wrong_magic_is_refused_at_the_first_byte() -> None:
    validator = ImageValidator()
    with pytest.raises(InvalidFirmware, match="first byte 0x00"):
        validator.feed(b"\0")


def test_zero_length() -> None:
    assert refusal(b"") == "empty file"


def test_truncated_at_each_part() -> None:
    data = build_image("1.0.0", payload=4096)  # segments' data at 32 (512 bytes), 552 (1024), 1584 (4096)
    end = len(data)  # 5696 through the checksum, then 32 bytes of SHA-256
    cases = {
        1: "truncated: image header ends at 24, file is 1 bytes",
        23: "truncated: image header ends at 24, file is 23 bytes",
        24: "truncated: segment 0 header ends at 32, file is 24 bytes",
        100: "truncated: segment 0 ends at 544, file is 100 bytes",
        548: "truncated: segment 1 header ends at 552, file is 548 bytes",
        4000: "truncated: segment 2 ends at 5680, file is 4000 bytes",
        5680: "truncated: checksum ends at 5696, file is 5680 bytes",
        5695: "truncated: checksum ends at 5696, file is 5695 bytes",
        5696: "truncated: appended SHA-256 ends at 5728, file is 5696 bytes",
        end - 1: f"truncated: appended SHA-256 ends at {end}, file is {end - 1} bytes",
    }
    for cut, message in cases.items():
        assert refusal(data[:cut]) == message


def test_checksum_mismatch() -> None:
    data = bytearray(build_image())
    data[checksum_offset(data)] ^= 0x01
    assert "does not match the segments'" in refusal(rehash(bytes(data)))


def test_corrupted_segment_data_is_caught_by_the_checksum() -> None:
    data = bytearray(build_image())
    data[2000] ^= 0x40
    assert refusal(rehash(bytes(data))).startswith("checksum 0x")


def test_appended_hash_mismatch() -> None:
    data = bytearray(build_image())
    data[-1] ^= 0x01
    assert refusal(bytes(data)) == "appended SHA-256 does not match"


def test_corruption_the_checksum_cannot_see_is_caught_by_the_hash() -> None:
    data = bytearray(build_image())
    data[2000] ^= 0x40  # two flips of the same bit in one segment cancel out in the XOR checksum
    data[2001] ^= 0x40
    assert refusal(bytes(data)) == "appended SHA-256 does not match"


@pytest.mark.parametrize(("chip", "target"), [("esp32s3", "esp32"), ("esp32", "esp32c3"), ("esp32c6", "ESP32-H2")])
def test_chip_mismatch(chip: str, target: str) -> None:
    expected = target.lower().replace("-", "")
    assert refusal(build_image(chip=chip), target=target) == f"built for {chip}, target is {expected}"


def test_unknown_chip_id() -> None:
    assert refusal(build_image(chip_id=0x63), target=None) == "unknown chip id 99 in the image header"


@pytest.mark.parametrize(
    ("header_change", "message"),
    [
        ({"segments": []}, "bad segment count 0, expected 1..16"),
        ({"segments": [(0x3FFB0000, b"abcd")] * 17}, "bad segment count 17, expected 1..16"),
        ({"spi_mode": 6}, "bad SPI flash mode 6, expected 0..5"),
        ({"spi_size": 8}, "bad SPI flash size code 8, expected 0..7"),
        ({"spi_speed": 5}, "bad SPI flash frequency code 5, expected 0, 1, 2 or 15"),
    ],
)
def test_insane_header_fields(header_change: dict, message: str) -> None:
    assert refusal(build_image(**header_change)) == message


def test_hash_appended_flag_must_be_0_or_1() -> None:
    data = bytearray(build_image(hash_appended=False))
    data[23] = 2
    assert refusal(bytes(data)) == "bad hash_appended flag 0x02, expected 0 or 1"


def test_segment_length_not_a_multiple_of_4() -> None:
    assert refusal(build_image(segments=[(0x3FFB0000, b"abcdef")])) == "segment 0 length 6 is not a multiple of 4"


def test_huge_segment_is_refused_before_its_data_arrives() -> None:
    header = build_image()[:24]
    validator = ImageValidator()
    with pytest.raises(InvalidFirmware, match="segment 0 length 16777216 is 16 MiB or more"):
        validator.feed(header + struct.pack("<II", 0x3F400020, 16 * 1024 * 1024))


def test_unprintable_version_in_the_app_description() -> None:
    segments = [(DROM_ADDRESS["esp32"], app_description("1.0\x1b[31m"))]
    assert refusal(build_image(segments=segments)) == "app description: version '1.0\\x1b[31m' has control characters"
    segments = [(DROM_ADDRESS["esp32"], app_description("1.0").replace(b"1.0", b"\xff\xfe1"))]
    assert refusal(build_image(segments=segments)) == "app description: version is not UTF-8"


def test_an_error_sticks_and_is_a_hub_error() -> None:
    validator = ImageValidator()
    with pytest.raises(InvalidFirmware) as first:
        validator.feed(b"\x7f")
    with pytest.raises(InvalidFirmware) as again:
        validator.feed(build_image())
    with pytest.raises(InvalidFirmware) as at_end:
        validator.finish()
    assert first.value is again.value is at_end.value
    assert isinstance(first.value, HubError) and isinstance(first.value, ValueError)
