"""The ``presence:`` section: defaults, validation errors with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.core.bootstrap import config_schemas, load_plugins
from hub.core.config import load_config
from hub.core.errors import ConfigError


def _load(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path, config_schemas(load_plugins(("hub.plugins.presence",), entry_point_plugins=False)))


def test_defaults(tmp_path):
    config = _load(tmp_path, "hub:\n  name: test\n")
    assert config["presence"] == {
        "timeout": 10.0,
        "initial_timeout": 90.0,
        "interval_factor": 3.0,
        "interval_window": 8,
        "check_interval": 1.0,
    }


def test_values_are_read(tmp_path):
    config = _load(tmp_path, "presence:\n  timeout: 30\n  interval_factor: 4\n")
    assert config["presence"]["timeout"] == 30.0
    assert config["presence"]["interval_factor"] == 4.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("presence:\n  timeout: abc\n", "config.yaml:2: presence -> timeout: expected float, got 'abc'"),
        ("presence:\n  timeout: 0\n", "config.yaml:2: presence -> timeout: value must be at least 0.1, got 0"),
        (
            "presence:\n  check_interval: 5\n  timout: 30\n",
            "config.yaml:3: presence: unknown key 'timout', did you mean 'timeout'?",
        ),
        (
            "presence:\n  interval_window: 2\n",
            "config.yaml:2: presence -> interval_window: value must be at least 3, got 2",
        ),
    ],
)
def test_errors_name_file_line_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert caught.value.messages == [message]
