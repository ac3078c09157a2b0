"""firmware/esphome/: every node YAML passes ``esphome config``, and the plugin's abbreviations match ESPHome's.

ESPHome needs Python >= 3.12 and pins its own dependencies, so it lives in its
own environment: ``scripts/esphome-env`` makes it and prints the executable,
which these tests take from ``HUB_ESPHOME`` (else ``esphome`` on PATH).  Without
it they skip, or fail under ``HUB_REQUIRE_SERVICES=1`` (CI).  ``esphome config``
is offline: it validates, it downloads and compiles nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hub_esphome.abbreviations import ABBREVIATIONS, DEVICE_ABBREVIATIONS

from hub.testing import services_required

pytestmark = pytest.mark.esphome

FIRMWARE = Path(__file__).resolve().parents[3] / "firmware" / "esphome"
NODES = sorted(p for p in FIRMWARE.glob("*.yaml") if not p.name.startswith("secrets"))


@pytest.fixture(scope="module")
def esphome() -> Path:
    configured = os.environ.get("HUB_ESPHOME")
    found = configured or shutil.which("esphome")
    if found and Path(found).is_file() and os.access(found, os.X_OK):
        return Path(found)
    reason = (
        f"HUB_ESPHOME={configured!r} is not an executable"
        if configured
        else "the esphome executable is not available: run scripts/esphome-env and set HUB_ESPHOME to what it prints"
    )
    if services_required():
        pytest.fail(f"{reason} (HUB_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
def firmware(tmp_path: Path) -> Path:
    """A copy of firmware/esphome/ with secrets.example.yaml as its secrets.yaml (real secrets stay out)."""
    copy = tmp_path / "esphome"
    shutil.copytree(FIRMWARE, copy, ignore=shutil.ignore_patterns("secrets.yaml", ".esphome"))
    shutil.copy(copy / "secrets.example.yaml", copy / "secrets.yaml")
    return copy


def test_there_are_example_nodes_and_each_includes_the_shared_package() -> None:
    assert {p.name for p in NODES} >= {"climate.yaml", "relay.yaml", "json_commands.yaml"}
    for node in NODES:
        assert "!include common/base.yaml" in node.read_text(encoding="utf-8"), node.name


@pytest.mark.parametrize("node", NODES, ids=lambda p: p.name)
def test_node_passes_esphome_config(esphome: Path, firmware: Path, node: Path) -> None:
    result = subprocess.run(
        [str(esphome), "config", node.name], cwd=firmware, capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Configuration is valid!" in output
    mqtt = output[output.index("\nmqtt:") :]
    for line in ("discovery: true", "discovery_unique_id_generator: mac", "reboot_timeout: 0s"):
        assert line in mqtt[: mqtt.index("\n\n")], line
    assert "mdns:\n  disabled: true" in output
    assert "ota:\n  - platform: http_request" in output and "update:\n  - platform: http_request" in output
    assert "source: http://192.168.1.10:8124/api/ota/manifest/" in output  # secrets.example.yaml's hub_url


def test_the_abbreviations_match_the_table_esphome_compiles_in(esphome: Path) -> None:
    python = esphome.parent / "python"
    package = subprocess.run(
        [str(python), "-c", "import esphome, os; print(os.path.dirname(esphome.__file__))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    header = (Path(package) / "components" / "mqtt" / "mqtt_const.h").read_text(encoding="utf-8")
    entries = re.findall(r'^\s*X\(MQTT_\w+, "([^"]+)", "([^"]+)"\)', header, re.MULTILINE)  # not the comments
    assert len(entries) > 200
    for abbreviation, full in entries:
        if abbreviation != full:
            assert full in (ABBREVIATIONS.get(abbreviation), DEVICE_ABBREVIATIONS.get(abbreviation)), abbreviation
