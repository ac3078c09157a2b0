"""One version, one set of bytes: the rules an upload is checked against."""

from __future__ import annotations

import pytest
from hub_ota.errors import VersionConflict
from hub_ota.image import validate_image
from hub_ota.store import FirmwareStore
from hub_ota.versions import check_new_image, check_version_text, resolve_version
from ota_images import build_image


def test_the_version_comes_from_the_image_or_the_upload() -> None:
    assert resolve_version(None, validate_image(build_image("1.4.2"))) == "1.4.2"
    assert resolve_version("1.4.2", validate_image(build_image("1.4.2"))) == "1.4.2"
    assert resolve_version("0.9", validate_image(build_image(None))) == "0.9"


def test_a_declared_version_must_match_the_image() -> None:
    with pytest.raises(VersionConflict, match="the image says version '1.4.2', the upload says '1.5.0'"):
        resolve_version("1.5.0", validate_image(build_image("1.4.2")))


def test_no_version_anywhere_is_refused() -> None:
    with pytest.raises(VersionConflict, match="no version"):
        resolve_version(None, validate_image(build_image(None)))
    with pytest.raises(VersionConflict, match="no version"):
        resolve_version(None, validate_image(build_image("")))


@pytest.mark.parametrize("version", ["", " 1.0", "1.0\n", "1\x00", "v" * 65])
def test_bad_version_text(version: str) -> None:
    with pytest.raises(VersionConflict):
        check_version_text(version)


def test_duplicate_version_with_different_bytes(tmp_path) -> None:
    store = FirmwareStore(tmp_path)
    first = store.put(build_image("2.0.0", seed=1))
    second = validate_image(build_image("2.0.0", seed=2))
    assert first.sha256 != second.sha256
    known = {"2.0.0": first.sha256}
    with pytest.raises(VersionConflict, match="version 2.0.0 already exists with other bytes"):
        check_new_image("2.0.0", second.sha256, known)


def test_same_version_same_bytes_is_a_repeat() -> None:
    sha256 = validate_image(build_image("2.0.0")).sha256
    assert check_new_image("2.0.0", sha256, {"2.0.0": sha256}) is True


def test_a_new_version_is_new() -> None:
    old, new = validate_image(build_image("1.0.0")), validate_image(build_image("1.1.0"))
    assert check_new_image("1.1.0", new.sha256, {"1.0.0": old.sha256}) is False


def test_the_same_bytes_under_another_version() -> None:
    sha256 = validate_image(build_image(None)).sha256
    with pytest.raises(VersionConflict, match="these bytes are already version 1.0"):
        check_new_image("1.1", sha256, {"1.0": sha256})
