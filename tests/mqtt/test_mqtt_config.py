"""The mqtt: section, broker URLs, and the reconnect backoff (no broker needed)."""

from __future__ import annotations

import random

import pytest

from hub.core.config import validate_config
from hub.core.config.loader import load_yaml
from hub.core.errors import ConfigError, HubError, InvalidBrokerUrl
from hub.plugins.mqtt.backoff import Backoff
from hub.plugins.mqtt.config import CONFIG_SCHEMA, BrokerUrl, default_client_id


def validate(section: object) -> dict:
    return validate_config({"mqtt": section}, {"mqtt": CONFIG_SCHEMA})["mqtt"]


def yaml(tmp_path, text: str) -> object:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_yaml(path)


def errors(section: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(section)
    return info.value.messages


def test_defaults_connect_to_the_embedded_broker_with_a_large_window() -> None:
    config = validate({})
    assert "broker" not in config and "protocol" not in config
    assert config["receive_maximum"] == 10_000
    assert config["session_expiry"] == 7 * 24 * 3600
    assert config["reconnect"] == {"min_delay": 0.5, "max_delay": 60.0}


def test_broker_url_forms() -> None:
    url = BrokerUrl.parse("mqtt://hub:p%40ss%3Aword@broker.lan")
    assert (url.host, url.port, url.username, url.password, url.tls) == ("broker.lan", 1883, "hub", "p@ss:word", False)
    assert BrokerUrl.parse("mqtts://10.0.0.2").port == 8883
    assert BrokerUrl.parse("mqtt://[::1]:1884").display == "mqtt://[::1]:1884"
    assert BrokerUrl.parse("mqtt://u:secret@h:1").display == "mqtt://h:1"
    for bad in ("http://h", "mqtt://", "mqtt://h/topic", "mqtt://h:99999", "h:1883"):
        with pytest.raises(InvalidBrokerUrl) as info:
            BrokerUrl.parse(bad)
        assert isinstance(info.value, HubError) and isinstance(info.value, ValueError)


def test_protocol_accepts_5_and_311_as_yaml_writes_them(tmp_path) -> None:
    assert validate(yaml(tmp_path, "protocol: 5\n"))["protocol"] == "5"
    assert validate(yaml(tmp_path, "protocol: 3.1.1\n"))["protocol"] == "3.1.1"
    assert errors({"protocol": 3.1}) == ["config.yaml: mqtt -> protocol: expected 5 or 3.1.1, got 3.1"]


def test_bad_values_are_reported_with_file_and_line(tmp_path) -> None:
    raw = yaml(tmp_path, "mqtt:\n  keepalive: soon\n  receive_maximum: 70000\n")
    with pytest.raises(ConfigError) as info:
        validate_config(raw, {"mqtt": CONFIG_SCHEMA})
    assert sorted(info.value.messages) == [
        "config.yaml:2: mqtt -> keepalive: expected int, got 'soon'",
        "config.yaml:3: mqtt -> receive_maximum: value must be at most 65535, got 70000",
    ]


def test_a_bad_broker_url_error_does_not_show_the_password() -> None:
    (message,) = errors({"broker": "mqtt://hub:hunter2secret@broker.lan:notaport"})
    assert "mqtt -> broker" in message
    assert "hunter2secret" not in message


def test_tls_options_need_mqtts_and_a_cert_for_a_key(tmp_path) -> None:
    key = tmp_path / "hub.key"
    key.write_text("x")
    assert errors({"broker": "mqtt://h", "tls": {"insecure": True}}) == [
        "config.yaml: mqtt -> tls: tls options need an mqtts:// broker URL"
    ]
    assert "keyfile needs certfile" in errors({"broker": "mqtts://h", "tls": {"keyfile": str(key)}})[0]
    assert "no such file" in errors({"broker": "mqtts://h", "tls": {"ca_certs": str(tmp_path / "missing.pem")}})[0]
    assert validate({"broker": "mqtts://h", "tls": {"insecure": True}})["tls"] == {"insecure": True}


def test_reconnect_delays_must_be_ordered() -> None:
    assert errors({"reconnect": {"min_delay": 5, "max_delay": 1}}) == [
        "config.yaml: mqtt -> reconnect -> min_delay: min_delay must not exceed max_delay, got 5"
    ]


def test_default_client_id_is_stable_and_safe() -> None:
    assert default_client_id("greenhouse") == "hub-greenhouse"
    assert default_client_id("Barn 2/east") == "hub-Barn-2-east"


def test_backoff_doubles_up_to_the_maximum_with_jitter_and_resets() -> None:
    backoff = Backoff(1.0, 8.0, rng=random.Random(4))
    delays = [backoff.next() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings):
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[3:]}) == 3  # jittered, not identical
    backoff.reset()
    assert 0.5 <= backoff.next() <= 1.0
