"""The ``esp32_node:`` config section: defaults from ``{}``, errors with their path."""

from __future__ import annotations

from typing import Any

import hub_esp32_node.plugin
import pytest

from hub import ConfigError

PLUGIN = [(hub_esp32_node.plugin, "esp32_node")]


async def test_empty_section_gives_the_demo_defaults(hub_factory: Any) -> None:
    hub = await hub_factory({}, builtins=(), plugins=PLUGIN, start=False)
    assert hub.config["esp32_node"] == {
        "demo": {"interval": 5.0, "seed": 2024, "power_loss_every": 45.0, "downtime": 25.0}
    }


async def test_bad_value_names_the_path(hub_factory: Any) -> None:
    with pytest.raises(ConfigError) as err:
        await hub_factory({"esp32_node": {"demo": {"interval": 0}}}, builtins=(), plugins=PLUGIN, start=False)
    assert "esp32_node -> demo -> interval" in "\n".join(err.value.messages)
