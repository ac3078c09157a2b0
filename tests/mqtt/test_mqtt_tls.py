"""mqtts:// against a private Mosquitto with a TLS listener and a throwaway CA made with openssl."""

from __future__ import annotations

import logging
import shutil
import subprocess

import pytest
from mqtt_helpers import MQTT_ONLY, mqtt_config, unique

from hub.core.errors import StartupError
from hub.plugins.mqtt import DATA_MQTT

pytestmark = pytest.mark.mosquitto


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
async def tls_broker(tmp_path, private_mosquitto):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    certs = tmp_path / "certs"
    certs.mkdir()
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=hub test CA",
        cwd=certs,
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
        cwd=certs,
    )
    (certs / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        cwd=certs,
    )
    broker = private_mosquitto(config="")
    broker.conf.write_text(
        f"listener {broker.port} 127.0.0.1\ncertfile {certs}/server.crt\nkeyfile {certs}/server.key\n"
        "allow_anonymous true\n" + broker.conf.read_text()
    )
    await broker.async_start()
    broker.ca = certs / "ca.crt"
    return broker


async def test_mqtts_with_the_brokers_ca_connects(hub_factory, tls_broker) -> None:
    url = f"mqtts://127.0.0.1:{tls_broker.port}"
    hub = await hub_factory(
        {"mqtt": mqtt_config(url, unique("hub"), tls={"ca_certs": str(tls_broker.ca)})}, builtins=MQTT_ONLY
    )
    assert hub.data[DATA_MQTT].connected


async def test_an_unverifiable_certificate_stops_the_hub(hub_factory, tls_broker) -> None:
    url = f"mqtts://127.0.0.1:{tls_broker.port}"
    with pytest.raises(StartupError, match=f"TLS to the MQTT broker mqtts://127.0.0.1:{tls_broker.port} failed"):
        await hub_factory({"mqtt": mqtt_config(url, unique("hub"))}, builtins=MQTT_ONLY)


async def test_insecure_skips_verification_and_says_so(hub_factory, tls_broker, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="hub.plugins.mqtt")
    url = f"mqtts://127.0.0.1:{tls_broker.port}"
    hub = await hub_factory({"mqtt": mqtt_config(url, unique("hub"), tls={"insecure": True})}, builtins=MQTT_ONLY)
    assert hub.data[DATA_MQTT].connected
    assert "the broker's certificate is not verified" in caplog.text
