"""The ``ota`` plugin loads from its entry point and owns the ``ota:`` config section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_ota.config import CONFIG_SCHEMA, firmware_dir

from hub.core.cli import main
from hub.core.config import validate_config
from hub.core.errors import ConfigError


def test_hub_plugins_lists_ota(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "ota")
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    ota = next(row for row in listing["loaded"] if row["name"] == "ota")
    assert ota["source"] == "hub-ota" and "hub_config_schema" in ota["hooks"]
    assert "ota" not in listing["failed"]


def test_check_config_accepts_an_ota_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "ota")
    config = tmp_path / "config.yaml"
    config.write_text("ota:\n  max_image_size: 2097152\n  firmware_dir: images\n")
    assert main(["check-config", "-c", str(config)]) == 0, capsys.readouterr().err


def test_empty_section_gives_the_defaults() -> None:
    config = validate_config({}, {"ota": CONFIG_SCHEMA})
    assert config["ota"] == {"max_image_size": 4 * 1024 * 1024, "firmware_dir": "firmware"}


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
def test_bad_size_limit(value: object, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config({"ota": {"max_image_size": value}}, {"ota": CONFIG_SCHEMA})
    assert problem in "\n".join(err.value.messages)


def test_firmware_dir_is_under_the_data_dir_unless_absolute(tmp_path: Path) -> None:
    section = validate_config({}, {"ota": CONFIG_SCHEMA})["ota"]
    assert firmware_dir(section, tmp_path) == tmp_path / "firmware"
    assert firmware_dir({"firmware_dir": "/srv/firmware"}, tmp_path) == Path("/srv/firmware")
