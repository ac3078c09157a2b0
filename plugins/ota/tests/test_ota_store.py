"""The content-addressed firmware store: what it keeps, what it refuses, and that nothing is ever half-written."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hub_ota.config import DEFAULT_MAX_IMAGE_SIZE
from hub_ota.errors import FirmwareNotFound, FirmwareTooLarge, InvalidFirmware, UnsafeName
from hub_ota.store import FirmwareStore, check_upload_name
from ota_images import build_image


@pytest.fixture
def store(tmp_path: Path) -> FirmwareStore:
    return FirmwareStore(tmp_path / "firmware")


def files(store: FirmwareStore) -> list[str]:
    """Every entry in the store's directory, temporaries included."""
    return sorted(os.listdir(store.directory))


class BreaksAfter(io.RawIOBase):
    """A stream that delivers ``data[:cut]`` and then fails, like an upload whose connection drops."""

    def __init__(self, data: bytes, cut: int) -> None:
        self._data, self._cut, self._position = data, cut, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self._position >= self._cut:
            raise ConnectionResetError("client went away")
        piece = self._data[self._position : min(self._cut, self._position + len(buffer), len(self._data))]
        buffer[: len(piece)] = piece
        self._position += len(piece)
        return len(piece)


def test_put_bytes_names_the_file_by_its_sha256(store: FirmwareStore) -> None:
    data = build_image("1.0.0")
    stored = store.put(data)
    assert stored.created and stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.path == store.directory / stored.sha256 == store.path(stored.sha256)
    assert stored.path.read_bytes() == data
    assert stored.info.version == "1.0.0"
    assert files(store) == [stored.sha256]
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o600


def test_put_a_path_and_a_stream(store: FirmwareStore, tmp_path: Path) -> None:
    first, second = build_image("1.0.0"), build_image("2.0.0", chip="esp32c3")
    (tmp_path / "upload.bin").write_bytes(first)
    assert store.put(tmp_path / "upload.bin").sha256 == hashlib.sha256(first).hexdigest()
    assert store.put(io.BytesIO(second), target="esp32c3").info.chip == "esp32c3"
    with store.open(hashlib.sha256(second).hexdigest()) as stream:
        assert stream.read() == second
    assert len(files(store)) == 2


def test_incremental_writer(store: FirmwareStore) -> None:
    data = build_image("3.0.0")
    with store.writer() as writer:
        for start in range(0, len(data), 1000):
            writer.write(data[start : start + 1000])
        stored = writer.commit()
    assert stored.path.read_bytes() == data


def test_same_bytes_twice_is_idempotent(store: FirmwareStore) -> None:
    data = build_image("1.0.0")
    first, second = store.put(data), store.put(io.BytesIO(data))
    assert (first.created, second.created) == (True, False)
    assert first.path == second.path and files(store) == [first.sha256]


@pytest.mark.parametrize("kind", ["bytes", "stream", "path"])
def test_oversized_is_refused_and_nothing_is_left(kind: str, tmp_path: Path) -> None:
    store = FirmwareStore(tmp_path / "firmware", max_size=64 * 1024)
    data = build_image(payload=80 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    source = {"bytes": data, "stream": io.BytesIO(data), "path": tmp_path / "big.bin"}[kind]
    with pytest.raises(FirmwareTooLarge, match="too large: over the limit of 65536 bytes"):
        store.put(source)
    assert files(store) == []


def test_the_size_limit_is_inclusive(tmp_path: Path) -> None:
    data = build_image()
    assert FirmwareStore(tmp_path / "exact", max_size=len(data)).put(data).created
    with pytest.raises(FirmwareTooLarge):
        FirmwareStore(tmp_path / "less", max_size=len(data) - 1).put(data)


def test_default_limit_is_4_mib(store: FirmwareStore) -> None:
    assert store.max_size == DEFAULT_MAX_IMAGE_SIZE == 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"\x7fELF" + bytes(1000), "not an ESP32 image"),
        (build_image()[:3000], "truncated: segment 2"),
        (build_image()[:-1], "truncated: appended SHA-256"),
    ],
)
def test_invalid_images_leave_nothing(store: FirmwareStore, data: bytes, message: str) -> None:
    with pytest.raises(InvalidFirmware, match=message):
        store.put(data)
    assert files(store) == []


def test_chip_mismatch_leaves_nothing(store: FirmwareStore) -> None:
    with pytest.raises(InvalidFirmware, match="built for esp32s3, target is esp32"):
        store.put(build_image(chip="esp32s3"), target="esp32")
    assert files(store) == []


def test_a_stream_failing_mid_upload_leaves_nothing(store: FirmwareStore) -> None:
    data = build_image(payload=200 * 1024)
    with pytest.raises(ConnectionResetError):
        store.put(io.BufferedReader(BreaksAfter(data, 100 * 1024)))
    assert files(store) == []


def test_an_abandoned_writer_leaves_nothing(store: FirmwareStore) -> None:
    data = build_image()
    with store.writer() as writer:
        writer.write(data[:1000])
        assert len(files(store)) == 1  # the temporary, while the upload is open
    assert files(store) == []
    with pytest.raises(ValueError, match="already committed or aborted"):
        writer.write(data[1000:])


def test_a_killed_process_leaves_no_image_and_its_temporary_is_swept(tmp_path: Path) -> None:
    """kill -9 in the middle of an upload: no file named by a digest; the next store open removes the rest."""
    directory = tmp_path / "firmware"
    image = tmp_path / "app.bin"
    image.write_bytes(build_image(payload=100 * 1024))
    script = textwrap.dedent(
        f"""
        import sys
        from hub_ota.store import FirmwareStore
        data = open({str(image)!r}, "rb").read()
        writer = FirmwareStore({str(directory)!r}).writer()
        writer.write(data[: len(data) // 2])
        print("half", flush=True)
        sys.stdin.read()
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "half\n"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    leftovers = os.listdir(directory)
    assert len(leftovers) == 1 and leftovers[0].startswith(".upload-")
    store = FirmwareStore(directory)
    assert files(store) == []
    assert store.put(image).path.read_bytes() == image.read_bytes()


def test_remove(store: FirmwareStore) -> None:
    sha256 = store.put(build_image()).sha256
    assert sha256 in store
    assert store.remove(sha256) is True
    assert store.remove(sha256) is False
    assert sha256 not in store and files(store) == []
    with pytest.raises(FirmwareNotFound, match=f"no firmware image {sha256}"):
        store.path(sha256)
    with pytest.raises(FirmwareNotFound):
        store.open(sha256)


TRICKS = [
    "../../x.bin",
    "../" + "0" * 64,
    "/etc/passwd",
    "a\0b",
    "",
    ".",
    "..",
    "0" * 63,
    "0" * 65,
    "A" * 64,
    "0" * 63 + "/",
    "g" * 64,
]


@pytest.mark.parametrize("name", TRICKS)
def test_lookups_take_only_digests(store: FirmwareStore, name: str) -> None:
    (store.directory.parent / "x.bin").write_bytes(b"secret")
    for lookup in (store.path, store.open, store.remove):
        with pytest.raises(UnsafeName, match="not a SHA-256 digest"):
            lookup(name)
    assert name not in store
    assert (store.directory.parent / "x.bin").read_bytes() == b"secret"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../x.bin", "a file name, not a path"),
        ("..\\..\\x.bin", "a file name, not a path"),
        ("/etc/passwd", "a file name, not a path"),
        ("C:\\firmware.bin", "a file name, not a path"),
        ("firmware/x.bin", "a file name, not a path"),
        ("x.bin\0.txt", "control characters"),
        ("x\n.bin", "control characters"),
        ("x\u202e.nib", "control characters"),
        ("", "not a file name"),
        ("..", "not a file name"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_upload_names_with_path_tricks_are_refused(name: str, message: str) -> None:
    with pytest.raises(UnsafeName, match=message):
        check_upload_name(name)


@pytest.mark.parametrize("name", ["firmware.bin", "greenhouse-1.4.2.ota.bin", "prüfung v2.bin", "..bin", "x" * 255])
def test_plain_upload_names_are_kept(name: str) -> None:
    assert check_upload_name(name) == name
