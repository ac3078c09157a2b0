"""The ``esp32_node:`` config section: defaults from ``{}``, errors with their path."""

from __future__ import annotations

import pytest
from hub_esp32_node.config import CONFIG_SCHEMA

from hub.core.config import validate_config
from hub.core.errors import ConfigError


def test_empty_section_gives_the_demo_defaults() -> None:
    config = validate_config({}, {"esp32_node": CONFIG_SCHEMA})
    assert config["esp32_node"] == {"demo": {"interval": 5.0, "seed": 2024, "power_loss_every": 45.0, "downtime": 25.0}}


def test_bad_value_names_the_path() -> None:
    with pytest.raises(ConfigError) as err:
        validate_config({"esp32_node": {"demo": {"interval": 0}}}, {"esp32_node": CONFIG_SCHEMA})
    assert "esp32_node -> demo -> interval" in "\n".join(err.value.messages)
