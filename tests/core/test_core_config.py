"""config.yaml: tags, line numbers (also inside included files), and the wording of every kind of error."""

from __future__ import annotations

from pathlib import Path

import pytest
import voluptuous as vol

from hub.core.config import CORE_SCHEMA, load_config, validate_config
from hub.core.config.loader import load_config_file, load_yaml
from hub.core.errors import ConfigError

SCHEMAS = {
    "mqtt": vol.Schema(
        {
            vol.Optional("broker"): str,
            vol.Optional("host", default="127.0.0.1"): str,
            vol.Optional("port", default=1883): int,
            vol.Optional("keepalive", default=60): vol.All(int, vol.Range(min=5)),
            vol.Optional("tls", default={}): {
                vol.Optional("ca_file"): str,
                vol.Optional("insecure", default=False): bool,
            },
            vol.Optional("users", default=[]): [{vol.Required("name"): str, vol.Optional("password"): str}],
        }
    ),
    "storage": {vol.Required("db_url"): str, vol.Optional("keep_days", default=30): int},
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def errors_of(path: Path, schemas=SCHEMAS) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, schemas)
    return caught.value.messages


def test_the_documented_error_format_exactly(tmp_path):
    lines = [
        "hub:",
        "  name: greenhouse",
        "",
        "# storage",
        "storage:",
        "  db_url: sqlite://",
        "",
        "",
        "",
        "",
        "",
        "",
        "mqtt:",
        "  port: abc",
    ]
    path = write(tmp_path, "config.yaml", "\n".join(lines) + "\n")
    assert errors_of(path) == ["config.yaml:14: mqtt -> port: expected int, got 'abc'"]


def test_valid_config_with_defaults_and_absolute_data_dir(tmp_path):
    path = write(tmp_path, "config.yaml", "hub:\n  data_dir: data\nstorage:\n  db_url: sqlite://\n")
    config = load_config(path, SCHEMAS)
    assert config["mqtt"]["port"] == 1883 and config["mqtt"]["tls"] == {"insecure": False}
    assert config["storage"] == {"db_url": "sqlite://", "keep_days": 30}
    limits = {
        "max_nodes": 20_000,
        "new_nodes_per_minute": 1_000,
        "max_entities_per_node": 512,
        "max_attributes": 128,
        "max_attribute_bytes": 4096,
    }
    assert config["hub"] == {"name": "hub", "data_dir": str(tmp_path / "data"), "log_level": "info", "limits": limits}


def test_missing_file_is_the_embedded_defaults(tmp_path):
    config = load_config(tmp_path / "nope.yaml", {"hub": CORE_SCHEMA})
    assert config["hub"]["name"] == "hub"


def test_empty_file_is_an_empty_config(tmp_path):
    path = write(tmp_path, "config.yaml", "# nothing yet\n")
    assert load_config_file(path) == {}


def test_top_level_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "config.yaml", "- a\n- b\n")
    assert errors_of(path) == ["config.yaml:1: the top level must be a mapping of sections (mqtt:, storage:, …)"]


def test_nested_keys_and_list_items_have_their_own_lines(tmp_path):
    path = write(
        tmp_path,
        "config.yaml",
        "storage:\n  db_url: x\nmqtt:\n  tls:\n    insecure: maybe\n  users:\n    - name: a\n    - name: 7\n",
    )
    assert errors_of(path) == [
        "config.yaml:5: mqtt -> tls -> insecure: expected bool, got 'maybe'",
        "config.yaml:8: mqtt -> users -> 1 -> name: expected str, got 7",
    ]


def test_missing_key_in_a_list_item_points_at_the_item(tmp_path):
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt:\n  users:\n    - name: a\n    - password: p\n")
    assert errors_of(path) == ["config.yaml:6: mqtt -> users -> 1: missing required key 'name'"]


def test_missing_key_in_an_included_section_points_at_the_include(tmp_path):
    write(tmp_path, "storage.yaml", "keep_days: 3\n")
    path = write(tmp_path, "config.yaml", "hub:\n  name: x\nstorage: !include storage.yaml\n")
    assert errors_of(path) == ["config.yaml:3: storage: missing required key 'db_url'"]


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    path = write(tmp_path, "config.yaml", "mqtt:\n  port: x\n  keepalive: 1\nstorage: {}\n")
    assert errors_of(path) == [
        "config.yaml:2: mqtt -> port: expected int, got 'x'",
        "config.yaml:3: mqtt -> keepalive: value must be at least 5, got 1",
        "config.yaml:4: storage: missing required key 'db_url'",
    ]


def test_unknown_key_did_you_mean(tmp_path):
    path = write(
        tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt:\n  host: h\n  prot: 1883\n  tls:\n    ca_flie: a.pem\n"
    )
    assert errors_of(path) == [
        "config.yaml:5: mqtt: unknown key 'prot', did you mean 'port'?",
        "config.yaml:7: mqtt -> tls: unknown key 'ca_flie', did you mean 'ca_file'?",
    ]


def test_unknown_key_without_a_close_match(tmp_path):
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\n  zzzzzz: 1\n")
    assert errors_of(path) == ["config.yaml:3: storage: unknown key 'zzzzzz'"]


def test_unknown_section_did_you_mean(tmp_path):
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqqt:\n  port: 1\nwhatever: 1\n")
    assert errors_of(path) == [
        "config.yaml:3: unknown section 'mqqt', did you mean 'mqtt'?",
        "config.yaml:5: unknown section 'whatever'",
    ]


def test_missing_required_key(tmp_path):
    path = write(tmp_path, "config.yaml", "hub:\n  name: x\n\nstorage:\n  keep_days: 3\n")
    assert errors_of(path) == ["config.yaml:4: storage: missing required key 'db_url'"]


def test_section_of_the_wrong_shape(tmp_path):
    path = write(tmp_path, "config.yaml", "storage:\n  - db_url\n")
    (message,) = errors_of(path)
    assert message.startswith("config.yaml:1: storage: expected a dictionary")


def test_duplicate_keys_are_an_error_with_both_lines(tmp_path):
    path = write(tmp_path, "config.yaml", "mqtt:\n  port: 1\n  host: a\n  port: 2\n")
    assert errors_of(path) == ["config.yaml:4: duplicate key 'port' (first on line 2)"]


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "config.yaml", "mqtt:\n  port: 1\n  host: [a, b\nstorage: x\n")
    (message,) = errors_of(path)
    assert message.startswith("config.yaml:4: invalid YAML:")


def test_tab_indentation_is_invalid_yaml(tmp_path):
    path = write(tmp_path, "config.yaml", "mqtt:\n\tport: 1\n")
    (message,) = errors_of(path)
    assert message.startswith("config.yaml:2: invalid YAML:")


def test_not_utf8(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"mqtt:\n  host: \xff\xfe\n")
    (message,) = errors_of(path)
    assert message == "config.yaml:2: not UTF-8 text (invalid start byte at byte 14)"


def test_control_characters_are_invalid_yaml_at_their_line(tmp_path):
    # Found by tests/fuzz: PyYAML's reader refused them while the loader was made, outside the error handling.
    path = write(tmp_path, "config.yaml", "hub:\n  name: a\x1fb\n")
    (message,) = errors_of(path)
    assert message == "config.yaml:2: invalid YAML: character 0x001f is not allowed"


@pytest.mark.parametrize("key", ["~", "null", "1", "[a]: 1\nb"])
def test_an_unknown_section_that_is_no_name(tmp_path, key):
    # Found by tests/fuzz: `~:` (None) or `1:` as a top-level key made the did-you-mean raise TypeError.
    path = write(tmp_path, "config.yaml", f"{key}: x\n")
    messages = errors_of(path)
    assert messages and all(message.startswith("config.yaml:1: ") for message in messages), messages


# --- !include -------------------------------------------------------------------------


def test_include_errors_point_into_the_included_file(tmp_path):
    write(tmp_path, "mqtt.yaml", "host: broker.lan\nport: abc\ntls:\n  ca_flie: x\n")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt: !include mqtt.yaml\n")
    assert errors_of(path) == [
        "mqtt.yaml:2: mqtt -> port: expected int, got 'abc'",
        "mqtt.yaml:4: mqtt -> tls: unknown key 'ca_flie', did you mean 'ca_file'?",
    ]


def test_include_in_a_subfolder_and_nested_include(tmp_path):
    write(tmp_path, "conf/mqtt.yaml", "port: 1884\ntls: !include tls.yaml\n")
    write(tmp_path, "conf/tls.yaml", "insecure: nope\n")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt: !include conf/mqtt.yaml\n")
    assert errors_of(path) == ["tls.yaml:1: mqtt -> tls -> insecure: expected bool, got 'nope'"]


def test_include_of_a_missing_file(tmp_path):
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt: !include nope.yaml\n")
    assert errors_of(path) == ["config.yaml:3: included file 'nope.yaml' not found"]


def test_invalid_yaml_inside_an_include(tmp_path):
    write(tmp_path, "mqtt.yaml", "port: 1\nhost: 'unclosed\n")
    path = write(tmp_path, "config.yaml", "mqtt: !include mqtt.yaml\n")
    (message,) = errors_of(path)
    assert message.startswith("mqtt.yaml:") and "invalid YAML" in message


def test_valid_include(tmp_path):
    write(tmp_path, "mqtt.yaml", "port: 1884\n")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt: !include mqtt.yaml\n")
    assert load_config(path, SCHEMAS)["mqtt"]["port"] == 1884


# --- !secret ----------------------------------------------------------------------------


def test_secret_present(tmp_path):
    write(tmp_path, "secrets.yaml", "db: postgresql://u:pw@h/db\n")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: !secret db\n")
    assert load_config(path, SCHEMAS)["storage"]["db_url"] == "postgresql://u:pw@h/db"


def test_secret_missing_name(tmp_path):
    write(tmp_path, "secrets.yaml", "other: 1\n")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt:\n  broker: !secret hub_mqtt_url\n")
    assert errors_of(path) == ["config.yaml:4: secret 'hub_mqtt_url' is not defined in secrets.yaml"]


def test_secret_without_secrets_yaml(tmp_path):
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: !secret db\n")
    assert errors_of(path) == [f"config.yaml:2: !secret used but {tmp_path / 'secrets.yaml'} does not exist"]


def test_secrets_yaml_that_is_not_a_mapping(tmp_path):
    write(tmp_path, "secrets.yaml", "- a\n")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: !secret db\n")
    assert errors_of(path) == [f"{tmp_path / 'secrets.yaml'}: must be a mapping of name: value"]


@pytest.mark.parametrize("top_uses_secret_first", [True, False])
def test_included_file_in_a_subfolder_uses_the_top_level_secrets(tmp_path, top_uses_secret_first):
    """Which secrets.yaml is used must not depend on which file happened to use a secret first."""
    write(tmp_path, "secrets.yaml", "pw: s3cret\ndb: sqlite://\n")
    write(tmp_path, "conf/mqtt.yaml", "broker: !secret pw\n")
    lines = ["storage:\n  db_url: !secret db\n", "mqtt: !include conf/mqtt.yaml\n"]
    path = write(tmp_path, "config.yaml", "".join(lines if top_uses_secret_first else reversed(lines)))
    config = load_config(path, SCHEMAS)
    assert config["mqtt"]["broker"] == "s3cret" and config["storage"]["db_url"] == "sqlite://"


def test_secrets_are_not_read_from_secrets_yaml_itself(tmp_path):
    write(tmp_path, "secrets.yaml", "a: !secret b\nb: 1\n")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: !secret a\n")
    assert errors_of(path) == ["secrets.yaml:1: secret 'b' is not defined in secrets.yaml"]


# --- !env_var ---------------------------------------------------------------------------


def test_env_var_set(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_TEST_DB", "sqlite:///x.db")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: !env_var HUB_TEST_DB\n")
    assert load_config(path, SCHEMAS)["storage"]["db_url"] == "sqlite:///x.db"


def test_env_var_unset_uses_default(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_TEST_PORT", raising=False)
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt:\n  port: !env_var HUB_TEST_PORT 1884\n")
    assert load_config(path, SCHEMAS)["mqtt"]["port"] == 1884


def test_env_var_takes_the_type_of_its_default(tmp_path, monkeypatch):
    """Setting the variable must not break a config that works with the default."""
    monkeypatch.setenv("HUB_TEST_PORT", "1885")
    monkeypatch.setenv("HUB_TEST_INSECURE", "yes")
    text = (
        "storage:\n  db_url: x\nmqtt:\n  port: !env_var HUB_TEST_PORT 1884\n"
        "  tls:\n    insecure: !env_var HUB_TEST_INSECURE false\n"
    )
    config = load_config(write(tmp_path, "config.yaml", text), SCHEMAS)
    assert config["mqtt"]["port"] == 1885 and config["mqtt"]["tls"]["insecure"] is True


def test_env_var_that_does_not_fit_its_default_is_reported_by_the_schema(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_TEST_PORT", "abc")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt:\n  port: !env_var HUB_TEST_PORT 1884\n")
    assert errors_of(path) == ["config.yaml:4: mqtt -> port: expected int, got 'abc'"]


def test_env_var_text_stays_text(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_TEST_PW", "0123")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: !env_var HUB_TEST_PW\n")
    assert load_config(path, SCHEMAS)["storage"]["db_url"] == "0123"


def test_env_var_unset_without_default(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_TEST_MISSING", raising=False)
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: x\nmqtt:\n  broker: !env_var HUB_TEST_MISSING\n")
    assert errors_of(path) == ["config.yaml:4: environment variable 'HUB_TEST_MISSING' is not set and has no default"]


def test_env_var_without_a_name(tmp_path):
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: !env_var ''\n")
    assert errors_of(path) == ["config.yaml:2: !env_var needs a variable name"]


# --- validation of plain dicts (what tests and hub_factory use) ---------------------------------


def test_validate_config_on_plain_dicts_has_no_line():
    with pytest.raises(ConfigError) as caught:
        validate_config({"storage": {"db_url": 5}}, SCHEMAS)
    assert caught.value.messages == ["config.yaml: storage -> db_url: expected str, got 5"]


def test_core_section_log_level(tmp_path):
    path = write(tmp_path, "config.yaml", "hub:\n  log_level: LOUD\n")
    (message,) = errors_of(path, {})
    assert message.startswith("config.yaml:2: hub -> log_level: value must be one of") and "got 'LOUD'" in message
    path = write(tmp_path, "config.yaml", "hub:\n  log_level: DEBUG\n")
    assert load_config(path, {})["hub"]["log_level"] == "debug"


def test_load_yaml_keeps_locations(tmp_path):
    path = write(tmp_path, "x.yaml", "a:\n  b: 1\n  c:\n    - 1\n    - 2\n")
    data = load_yaml(path)
    assert data.file == "x.yaml" and data.key_lines == {"a": 1}
    assert data["a"].key_lines == {"b": 2, "c": 3}
    assert data["a"]["c"].key_lines == {0: 4, 1: 5}


def test_merge_keys_let_local_keys_override(tmp_path):
    text = (
        "defaults: &defaults\n  host: broker.lan\n  port: 1883\n"
        "storage:\n  db_url: x\n"
        "mqtt:\n  <<: *defaults\n  port: abc\n"
    )
    path = write(tmp_path, "config.yaml", text)
    data = load_config_file(path)
    assert data["mqtt"] == {"host": "broker.lan", "port": "abc"}
    # the overriding key keeps its own line, the merged one points at the anchor
    assert data["mqtt"].key_lines == {"host": 2, "port": 8}
    messages = errors_of(path, {**SCHEMAS, "defaults": dict})
    assert messages == ["config.yaml:8: mqtt -> port: expected int, got 'abc'"]


def test_merge_keys_do_not_hide_real_duplicates(tmp_path):
    text = "base: &b\n  a: 1\nx:\n  <<: *b\n  c: 1\n  c: 2\n"
    path = write(tmp_path, "config.yaml", text)
    assert errors_of(path) == ["config.yaml:6: duplicate key 'c' (first on line 5)"]


def test_include_cycle_is_a_located_error(tmp_path):
    (tmp_path / "config.yaml").write_text("hub: !include a.yaml\n")
    (tmp_path / "a.yaml").write_text("name: !include b.yaml\n")
    (tmp_path / "b.yaml").write_text("x: !include a.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_config_file(tmp_path / "config.yaml")
    assert err.value.messages == ["b.yaml:1: !include cycle: config.yaml -> a.yaml -> b.yaml -> a.yaml"]


def test_router_refuses_coroutine_handlers():
    from hub.core.messages import MessageRouter

    async def handler(topic, payload, retained):  # pragma: no cover - never called
        pass

    with pytest.raises(TypeError, match="plain functions"):
        MessageRouter().subscribe("a/#", handler)


def test_a_section_of_a_plugin_that_failed_to_load_is_skipped_with_a_warning(tmp_path, caplog):
    """One broken plugin must not turn into a dead hub: its section may be unknown now, so it is only logged."""
    path = tmp_path / "config.yaml"
    path.write_text("hub:\n  name: x\nfancy:\n  colour: red\n")
    with pytest.raises(ConfigError):  # nothing failed: a stray section is a mistake
        load_config(path, {})
    config = load_config(path, {}, failed_plugins=["fancy"])
    assert "fancy" not in config
    assert config["hub"]["name"] == "x"
    assert "config.yaml:3: section 'fancy' is not used: no loaded plugin owns it (failed to load: fancy)" in caplog.text


# --- keeping secrets secret -------------------------------------------------------------


def test_errors_never_show_a_secret_value(tmp_path):
    write(tmp_path, "secrets.yaml", "port: hunter2-SECRET\nca: [x]\n")
    write(tmp_path, "conf/tls.yaml", "ca_file: !secret ca\n")
    text = "storage:\n  db_url: x\nmqtt:\n  port: !secret port\n  tls: !include conf/tls.yaml\n"
    path = write(tmp_path, "config.yaml", text)
    errors = errors_of(path)
    assert errors == [
        "config.yaml:4: mqtt -> port: expected int, got the value of a !secret (not shown)",
        "conf/tls.yaml:1: mqtt -> tls -> ca_file: expected str",
    ]
    assert "hunter2" not in "\n".join(errors)


def test_a_validators_own_message_does_not_leak_a_secret(tmp_path):
    def checked(value):
        raise vol.Invalid(f"cannot use {value!r}")

    write(tmp_path, "secrets.yaml", "db: postgresql://hub:hunter2-SECRET@db/hub\n")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: !secret db\n")
    errors = errors_of(path, {"storage": {vol.Required("db_url"): checked}})
    assert errors == ["config.yaml:2: storage -> db_url: cannot use '<secret>', got the value of a !secret (not shown)"]


def test_include_outside_the_config_directory_is_refused(tmp_path):
    write(tmp_path, "elsewhere/mqtt.yaml", "port: 1884\n")
    write(tmp_path, "conf/mqtt.yaml", "port: !include ../../elsewhere/mqtt.yaml\n")
    (tmp_path / "site" / "conf").mkdir(parents=True)
    (tmp_path / "site" / "link.yaml").symlink_to(tmp_path / "elsewhere" / "mqtt.yaml")
    for text, line in [
        ("mqtt: !include ../elsewhere/mqtt.yaml\n", 1),
        (f"mqtt: !include {tmp_path / 'elsewhere' / 'mqtt.yaml'}\n", 1),
        ("mqtt: !include link.yaml\n", 1),  # a symlink does not get around it
    ]:
        path = write(tmp_path, "site/config.yaml", text)
        (error,) = errors_of(path)
        assert error.startswith(f"config.yaml:{line}: !include ") and "outside the config directory" in error
    write(tmp_path, "site/conf/mqtt.yaml", "port: !include ../../elsewhere/mqtt.yaml\n")
    path = write(tmp_path, "site/config.yaml", "mqtt: !include conf/mqtt.yaml\n")
    (error,) = errors_of(path)
    assert error.startswith("conf/mqtt.yaml:1: !include ") and "outside the config directory" in error


def test_a_world_readable_secrets_yaml_is_warned_about(tmp_path, caplog):
    secrets = write(tmp_path, "secrets.yaml", "db: sqlite://\n")
    path = write(tmp_path, "config.yaml", "storage:\n  db_url: !secret db\n")
    secrets.chmod(0o644)
    load_config(path, SCHEMAS)
    assert "readable by every user" in caplog.text and "chmod 600" in caplog.text
    caplog.clear()
    secrets.chmod(0o600)
    load_config(path, SCHEMAS)
    assert "readable by every user" not in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hub:\n  name: !!int x\n", "config.yaml:2: cannot read 'x' as tag:yaml.org,2002:int"),
        ("hub:\n  name: !!bool maybe\n", "config.yaml:2: cannot read 'maybe' as tag:yaml.org,2002:bool"),
        ("\nhub: !!timestamp soon\n", "config.yaml:2: cannot read 'soon' as tag:yaml.org,2002:timestamp"),
        ("hub:\n  name: " + "[" * 3000 + "\n", "config.yaml:2: invalid YAML: nested too deeply"),
        ("hub:\n  name: !env_var HUB_UNSET_X [1\n", "config.yaml:2: !env_var default '[1' is not a YAML value"),
    ],
)
def test_values_pyyaml_cannot_build_are_located_errors(tmp_path, text, message):
    # Found by tests/fuzz: PyYAML raised ValueError, KeyError, AttributeError or RecursionError as a traceback,
    # and a bad !env_var default was reported at line 1 of the default itself.
    path = write(tmp_path, "config.yaml", text)
    assert errors_of(path) == [message]


@pytest.mark.parametrize("name", ['"a\\0b"', "a" * 300, "loop"])
def test_an_include_name_the_system_refuses_is_a_located_error(tmp_path, name):
    # Found by tests/fuzz: a NUL byte (ValueError), a name too long or a symlink loop (OSError) was a traceback.
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    path = write(tmp_path, "config.yaml", f"hub:\n  name: !include {name}\n")
    (message,) = errors_of(path)
    assert message.startswith("config.yaml:2: !include ") and "not a usable file name" in message


@pytest.mark.parametrize(("value", "line"), [(".inf", 3), ("[1, -.inf]", 3), ("{a: .inf}", 3)])
def test_a_validator_that_raises_is_a_located_error(tmp_path, value, line):
    # Found by tests/fuzz: vol.Coerce(int) raises OverflowError (not Invalid) on .inf, and `hub check-config`
    # printed a traceback for `max_sessions_per_user: .inf`.
    schemas = {"s": vol.Schema({"name": str, "n": vol.Any(vol.Coerce(int), [vol.Coerce(int)], {"a": vol.Coerce(int)})})}
    path = write(tmp_path, "config.yaml", f"s:\n  name: x\n  n: {value}\n")
    (message,) = errors_of(path, schemas)
    assert message.startswith(f"config.yaml:{line}: s -> n") and "cannot be used" in message


def test_a_validators_own_message_masks_url_passwords(tmp_path):
    # Found by tests/fuzz: the broker's host validator quoted mqtt://user:password@… whole in its message.
    def no_urls(value):
        raise vol.Invalid(f"{value} is not a host name")

    path = write(tmp_path, "config.yaml", "s:\n  host: mqtt://u:hunter2@example\n")
    (message,) = errors_of(path, {"s": vol.Schema({"host": no_urls})})
    assert "hunter2" not in message and "mqtt://u:***@example" in message
