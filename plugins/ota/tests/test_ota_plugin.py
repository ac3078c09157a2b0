"""The ``ota`` plugin loads from its entry point and owns the ``ota:`` config section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import hub_ota.plugin
import pytest
from hub_ota.config import firmware_dir

from hub import ConfigError
from hub.testing import make_hub

HUB = str(Path(sys.executable).with_name("hub"))
"""The ``hub`` command installed beside this Python, run as a user would."""


def run_hub(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``hub ARGS…`` with only this plugin loaded; its exit code, stdout and stderr."""
    env = {**os.environ, "HUB_LOAD_PLUGINS": "ota"}
    return subprocess.run([HUB, *args], capture_output=True, text=True, timeout=60, check=False, env=env)


def ota_section(tmp_path: Path, section: Any = None) -> dict[str, Any]:
    """The validated ``ota:`` section of a hub with only this plugin (``ConfigError`` if invalid)."""
    config = {"hub": {"data_dir": str(tmp_path)}, **({} if section is None else {"ota": section})}
    builtins = ("hub.plugins.storage", "hub.plugins.http")  # what ota requires
    return make_hub(config, builtins=builtins, plugins=[(hub_ota.plugin, "ota")]).config["ota"]


def test_hub_plugins_lists_ota() -> None:
    done = run_hub("plugins", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    ota = next(row for row in listing["loaded"] if row["name"] == "ota")
    assert ota["source"] == "hub-ota" and "hub_config_schema" in ota["hooks"]
    assert "ota" not in listing["failed"]


def test_check_config_accepts_an_ota_section(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("ota:\n  max_image_size: 2097152\n  firmware_dir: images\n")
    done = run_hub("check-config", "-c", str(config))
    assert done.returncode == 0, done.stderr


def test_empty_section_gives_the_defaults(tmp_path: Path) -> None:
    assert ota_section(tmp_path) == {
        "max_image_size": 4 * 1024 * 1024,
        "firmware_dir": "firmware",
        "manifest_link_lifetime": 86400.0,
    }


def test_public_url(tmp_path: Path) -> None:
    assert ota_section(tmp_path, {"public_url": "https://hub.lan:8443/"})["public_url"] == "https://hub.lan:8443"
    for bad in ("ftp://hub", "hub.lan:8124", "http://hub/?x=1", 8124):
        with pytest.raises(ConfigError):
            ota_section(tmp_path, {"public_url": bad})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (100, "ota -> max_image_size"),
        (32 * 1024 * 1024, "ota -> max_image_size"),
        ("4MB", "whole number of bytes"),
        (True, "whole number of bytes"),
        (1.5e6, "whole number of bytes"),
    ],
)
def test_bad_size_limit(tmp_path: Path, value: object, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        ota_section(tmp_path, {"max_image_size": value})
    assert problem in "\n".join(err.value.messages)


def test_firmware_dir_is_under_the_data_dir_unless_absolute(tmp_path: Path) -> None:
    section = ota_section(tmp_path)
    assert firmware_dir(section, tmp_path) == tmp_path / "firmware"
    assert firmware_dir({"firmware_dir": "/srv/firmware"}, tmp_path) == Path("/srv/firmware")
