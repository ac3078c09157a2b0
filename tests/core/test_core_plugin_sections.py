"""Config sections have one owner: conflicts and undeclared sections stop the hub with the plugins named."""

from __future__ import annotations

import pytest

from hub import Manifest, hookimpl
from hub.core.bootstrap import config_schemas
from hub.core.cli import main
from hub.core.errors import ConfigError
from hub.core.plugins.manager import PluginManager


class SectionPlugin:
    """Declares ``declared`` in its manifest and returns a schema for each of ``returned``."""

    def __init__(self, name: str, declared: tuple[str, ...], returned: tuple[str, ...]) -> None:
        self.MANIFEST = Manifest(name=name, sections=declared)
        self.returned = returned

    @hookimpl
    def hub_config_schema(self):
        return {section: {} for section in self.returned}


def manager(*plugins: SectionPlugin) -> PluginManager:
    result = PluginManager()
    for plugin in plugins:
        result.register(plugin, plugin.MANIFEST.name)
    return result


def test_each_plugin_gets_its_own_sections():
    schemas = config_schemas(
        manager(SectionPlugin("a", ("a",), ("a",)), SectionPlugin("b", ("b1", "b2"), ("b1", "b2")))
    )
    assert set(schemas) == {"a", "b1", "b2"}


def test_two_plugins_claiming_one_section_is_an_error_naming_both():
    with pytest.raises(ConfigError) as err:
        config_schemas(
            manager(SectionPlugin("weather", ("sky",), ("sky",)), SectionPlugin("astro", ("sky",), ("sky",)))
        )
    assert err.value.messages == ["config section 'sky' is claimed by both plugin astro and plugin weather"]


def test_claiming_the_cores_section_is_an_error():
    with pytest.raises(ConfigError) as err:
        config_schemas(manager(SectionPlugin("greedy", ("hub",), ("hub",))))
    assert err.value.messages == ["config section 'hub' is claimed by both the core and plugin greedy"]


def test_a_schema_for_an_undeclared_section_is_an_error():
    with pytest.raises(ConfigError) as err:
        config_schemas(manager(SectionPlugin("sneaky", ("mine",), ("mine", "yours"))))
    assert err.value.messages == [
        (
            "plugin sneaky returns a schema for config section 'yours', which its manifest does not declare "
            "(sections=('mine',))"
        )
    ]


def test_a_declared_section_without_a_schema_is_an_error():
    with pytest.raises(ConfigError) as err:
        config_schemas(manager(SectionPlugin("lazy", ("mine",), ())))
    assert err.value.messages == [
        "plugin lazy declares config section 'mine' in its manifest, but its hub_config_schema returns no schema for it"
    ]


CLASH = {
    "weather": """
        import hub
        MANIFEST = hub.Manifest(name="weather", sections=("sky",))

        @hub.hookimpl
        def hub_config_schema():
            return {"sky": {}}
    """,
    "astro": """
        import hub
        MANIFEST = hub.Manifest(name="astro", sections=("sky",))

        @hub.hookimpl
        def hub_config_schema():
            return {"sky": {}}
    """,
}


def test_check_config_reports_two_installed_plugins_claiming_one_section(install_distribution, tmp_path, capsys):
    install_distribution(
        "clash-plugins",
        "0.1",
        "clashplugins",
        CLASH,
        {"weather": "clashplugins.weather", "astro": "clashplugins.astro"},
    )
    config = tmp_path / "config.yaml"
    config.write_text("hub:\n  name: x\n")
    assert main(["check-config", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "config section 'sky' is claimed by both plugin astro and plugin weather" in err
