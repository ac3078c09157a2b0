"""``hub esphome compile``: a real compile of a host-platform node, its binary found and recorded; offline ESP32.

The host node compiles with the system's g++ and downloads nothing.  The ESP32
compile runs in a network namespace of its own (``unshare -n``: no interface
but a downed loopback), so it cannot reach anything, on any machine, and must
end with the hub's plain "cannot download its toolchain" message.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from esphome_testing import esphome_executable, host_firmware
from hub_esphome.builds import BUILD_RECORD, file_sha256
from hub_esphome.runner import OFFLINE_MESSAGE, run_esphome

from hub.testing import services_required

pytestmark = pytest.mark.esphome

FIRMWARE = Path(__file__).resolve().parents[3] / "firmware" / "esphome"


def _config(tmp: Path, firmware: Path, executable: Path | str | None) -> Path:
    config = tmp / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "hub": {"data_dir": str(tmp / "data")},
                "storage": {"db_url": f"sqlite+aiosqlite:///{tmp / 'hub.db'}"},
                "esphome": {
                    "firmware_dir": str(firmware),
                    "executable": None if executable is None else str(executable),
                },
            }
        )
    )
    return config


def _hub_cli(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HUB_ESPHOME"}
    return subprocess.run(
        [sys.executable, "-m", "hub", *argv], capture_output=True, text=True, env=env, check=False, **kwargs
    )


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """The host node compiled once by ``hub esphome compile`` (config file, firmware folder, the run)."""
    executable = esphome_executable()
    tmp = tmp_path_factory.mktemp("compiled")
    firmware = host_firmware(tmp / "firmware")
    config = _config(tmp, firmware, executable)
    return config, firmware, _hub_cli("esphome", "compile", "host-node", "-c", str(config), timeout=900)


def test_compile_builds_the_node_and_reports_its_binary(compiled: Any) -> None:
    config, firmware, run = compiled
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "==> esphome compile host-node.yaml" in out
    assert "INFO ESPHome 2026.10" in out and "Successfully compiled program" in out  # ESPHome's own lines
    record = json.loads((firmware / ".esphome" / "build" / "host-node" / BUILD_RECORD).read_text())
    binary = Path(record["binary"])
    assert binary.name == "program" and binary.is_file()
    assert record["size"] == binary.stat().st_size and record["sha256"] == file_sha256(binary)
    assert (record["version"], record["name"], record["file"]) == ("1.2.3", "host-node", "host-node.yaml")
    assert record["config_hash"].startswith("0x") and record["esphome_version"].startswith("2026.10")
    assert f"  binary  {binary}" in out and f"  sha256  {record['sha256']}" in out
    assert f"  size    {record['size']} bytes" in out
    # The program runs: it is a real host build of the node.
    assert os.access(binary, os.X_OK)


def test_list_shows_the_compiled_version_and_when_the_yaml_changed_since(compiled: Any, tmp_path: Path) -> None:
    config, firmware, run = compiled
    assert run.returncode == 0
    listed = _hub_cli("esphome", "list", "--json", "-c", str(config), timeout=120)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["compiled"]["version"] == "1.2.3" and row["compiled"]["outdated"] is False
    assert (row["seen"], row["up_to_date"], row["area"]) == (False, None, "Test bench")
    node = firmware / "host-node.yaml"
    original = node.read_text()
    try:
        node.write_text(original.replace('version: "1.2.3"', 'version: "1.2.4"'))
        (row,) = json.loads(_hub_cli("esphome", "list", "--json", "-c", str(config), timeout=120).stdout)
        assert row["compiled"]["outdated"] is True
    finally:
        node.write_text(original)


def test_compile_says_how_to_get_esphome(tmp_path: Path) -> None:
    firmware = host_firmware(tmp_path / "firmware")
    run = _hub_cli("esphome", "compile", "host-node", "-c", str(_config(tmp_path, firmware, "/nonexistent/esphome")))
    assert run.returncode == 1
    assert "scripts/esphome-env" in run.stderr and "HUB_ESPHOME" in run.stderr


async def test_output_arrives_line_by_line_while_esphome_runs(tmp_path: Path) -> None:
    """A stand-in that waits, after its first line, for the reader to have seen it: buffered output would hang."""
    gate = tmp_path / "gate"
    script = tmp_path / "esphome"
    script.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys, time\n"
        "print('INFO first line')\n"  # no flush: PYTHONUNBUFFERED must make it go out now
        f"gate = pathlib.Path({str(gate)!r})\n"
        "deadline = time.monotonic() + 60\n"
        "while not gate.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print('gate seen' if gate.exists() else 'gate missing')\n"
        "print('\\x1b[31mERROR coloured\\x1b[0m', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    script.chmod(0o755)
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        gate.touch()

    result = await run_esphome(script, ["compile", "x.yaml"], cwd=tmp_path, on_line=on_line)
    assert lines == ["INFO first line", "gate seen", "ERROR coloured"]
    assert result.returncode == 3 and result.problem is None


def test_an_esp32_compile_offline_says_so(tmp_path: Path) -> None:
    executable = esphome_executable()
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], check=False).returncode != 0:
        if services_required():
            pytest.fail("unshare -n is not available (HUB_REQUIRE_SERVICES=1)")
        pytest.skip("unshare -n is not available: no network namespace to compile offline in")
    firmware = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, firmware, ignore=shutil.ignore_patterns("secrets.yaml", ".esphome"))
    shutil.copy(firmware / "secrets.example.yaml", firmware / "secrets.yaml")
    config = _config(tmp_path, firmware, executable)
    home = tmp_path / "home"  # no toolchain cached from an earlier run on this machine
    home.mkdir()
    run = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "hub", "esphome", "compile", "relay-1", "-c", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home), "PLATFORMIO_CORE_DIR": str(home / ".platformio")},
        timeout=600,
        check=False,
    )
    assert run.returncode == 1, run.stdout[-2000:]
    assert "INFO ESPHome 2026.10" in run.stdout  # ESPHome's output came through before it failed
    assert OFFLINE_MESSAGE in run.stderr and "Compiling relay.yaml failed" in run.stderr
    assert not (firmware / ".esphome" / "build" / "relay-1" / BUILD_RECORD).exists()
    # Stopped at PlatformIO's first failed lookup of its registry, not after its minute of retries.
    retries = [line for line in run.stdout.splitlines() if "Retrying" in line]
    assert len(retries) == 1 and "platformio.org" in retries[0], run.stdout[-2000:]
    assert "Traceback" not in run.stdout


async def test_a_compile_stops_at_the_first_sign_of_being_offline(tmp_path: Path) -> None:
    """A stand-in that, like PlatformIO, goes on retrying after a failed lookup: the hub does not wait for it."""
    script = tmp_path / "esphome"
    script.write_text(
        f"#!{sys.executable}\n"
        "import time\n"
        "print('INFO Compiling app...')\n"
        'print("WARNING Retrying (Retry(total=4)) after connection broken by \'NameResolutionError(\\"Failed to '
        "resolve 'api.registry.platformio.org'\\\")': /v3/packages/esphome/library/noise-c\")\n"
        "time.sleep(600)\n"
    )
    script.chmod(0o755)
    lines: list[str] = []
    result = await asyncio.wait_for(
        run_esphome(script, ["compile", "x.yaml"], cwd=tmp_path, on_line=lines.append, stop_when_offline=True), 60
    )
    assert not result.ok and result.problem == OFFLINE_MESSAGE
    assert lines[0] == "INFO Compiling app..." and "NameResolutionError" in lines[1]


async def test_an_uploads_network_error_is_not_taken_for_a_toolchain_download(tmp_path: Path) -> None:
    """``esphome upload`` failing to reach the device (what ESPHome prints after its three tries) is no download."""
    script = tmp_path / "esphome"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "print('ERROR Upload failed after 3 attempts: connecting to 192.168.1.20 failed: [Errno 101] Network is "
        "unreachable')\n"
        "sys.exit(1)\n"
    )
    script.chmod(0o755)
    arguments = ["upload", "--device", "192.168.1.20", "x.yaml"]
    upload = await run_esphome(script, arguments, cwd=tmp_path, on_line=lambda _line: None, diagnose_offline=False)
    assert (upload.returncode, upload.problem) == (1, None)
    compile_ = await run_esphome(script, ["compile", "x.yaml"], cwd=tmp_path, on_line=lambda _line: None)
    assert compile_.problem == OFFLINE_MESSAGE
