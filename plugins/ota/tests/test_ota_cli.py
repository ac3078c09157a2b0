"""``hub firmware add`` and ``hub firmware list``, run as a user would (a subprocess with a config file)."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import hub_ota.plugin
from hub_ota.keys import DATA_OTA
from ota_images import build_image
from ota_testing import STORAGE_HTTP

from hub.testing import create_user_and_token, free_port

HUB = str(Path(sys.executable).with_name("hub"))


def run_hub(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUB_LOAD_PLUGINS": "ota"}
    return subprocess.run([HUB, *args], capture_output=True, text=True, timeout=60, check=False, env=env)


def test_add_then_list(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"hub:\n  data_dir: {tmp_path / 'data'}\n")
    image = tmp_path / "greenhouse.bin"
    image.write_bytes(build_image("1.2.0", project="greenhouse"))

    added = run_hub("firmware", "add", str(image), "--version", "1.2.0", "-c", str(config))
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("added 1.2.0  esp32  ")
    again = run_hub("firmware", "add", str(image), "-c", str(config))  # the version the image carries
    assert again.returncode == 0 and again.stdout.startswith("already there: 1.2.0"), again.stderr

    listed = run_hub("firmware", "list", "--json", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["version"] == "1.2.0" and row["project"] == "greenhouse" and row["name"] == "greenhouse.bin"
    assert row["uploaded_by"] == f"cli:{getpass.getuser()}"
    table = run_hub("firmware", "list", "-c", str(config))
    assert "1.2.0" in table.stdout and table.stdout.rstrip().endswith("1 image(s)")


def test_refusals_exit_1_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"hub:\n  data_dir: {tmp_path / 'data'}\nota:\n  max_image_size: 65536\n")
    cases = {
        "elf.bin": (b"\x7fELF" + bytes(100), "not an ESP32 image"),
        "big.bin": (build_image("1.0.0", payload=100_000), "over the limit of 65536 bytes"),
        "short.bin": (build_image("1.0.0")[:100], "truncated"),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        done = run_hub("firmware", "add", str(path), "--version", "1.0.0", "-c", str(config))
        assert done.returncode == 1 and reason in done.stderr, (name, done.stderr)
    missing = run_hub("firmware", "add", str(tmp_path / "nope.bin"), "-c", str(config))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    assert list((tmp_path / "data" / "firmware").iterdir()) == []


def test_a_database_that_cannot_be_opened_exits_1_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    port = free_port()  # nothing listens there
    config.write_text(
        f"hub:\n  data_dir: {tmp_path / 'data'}\nstorage:\n  db_url: postgresql://postgres@127.0.0.1:{port}/x\n"
    )
    for command in (("firmware", "list"), ("firmware", "add", str(tmp_path / "config.yaml"))):
        done = run_hub(*command, "-c", str(config))
        assert done.returncode == 1, (command, done.stderr)
        assert "cannot open the database" in done.stderr and "Traceback" not in done.stderr, (command, done.stderr)


async def test_a_running_hub_sees_what_the_cli_added(tmp_path: Path, hub_factory) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"hub:\n  data_dir: {tmp_path / 'data'}\n")
    hub = await hub_factory(
        {"hub": {"data_dir": str(tmp_path / "data")}, "http": {"port": 0}},
        builtins=STORAGE_HTTP,
        plugins=[(hub_ota.plugin, "ota")],
    )
    await create_user_and_token(hub)
    image = tmp_path / "app.bin"
    image.write_bytes(build_image("5.0.0"))
    done = await asyncio.to_thread(run_hub, "firmware", "add", str(image), "-c", str(config))
    assert done.returncode == 0, done.stderr
    rows = await hub.data[DATA_OTA].catalogue.list()
    assert [row.version for row in rows] == ["5.0.0"]
