"""``hub simulate`` as a user runs it: progress, summary, Ctrl-C, an unreachable broker."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest

from hub.testing import node_macs

pytestmark = pytest.mark.mosquitto

HUB = str(Path(sys.executable).with_name("hub"))
"""The ``hub`` command installed beside this Python, run as a user would."""


def run_hub(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``hub ARGS…`` to completion; its exit code, stdout and stderr."""
    return subprocess.run([HUB, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def seed(hub_mqtt_url: str) -> Iterator[int]:
    """A fresh seed (fresh MACs); the retained statuses its nodes leave are cleared afterwards."""
    seed = random.randrange(2**32)
    yield seed
    parts = urlsplit(hub_mqtt_url)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    for index, mac in enumerate(node_macs(seed, 4)):
        spelling = mac.replace(":", "").lower() if index % 4 == 3 else mac
        client.publish(f"devices/{spelling}/status", b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_simulate_runs_for_a_duration_and_prints_a_summary(hub_mqtt_url: str, seed: int) -> None:
    done = run_hub(
        "simulate",
        "--broker",
        hub_mqtt_url,
        "--nodes",
        "2",
        "--interval",
        "0.25",
        "--duration",
        "1.5",
        "--seed",
        str(seed),
        "--qos",
        "0",
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "Simulating 2 ESP32 node(s)" in out and "QoS 0" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("Stopped after") and "by 2 node(s)" in summary and "0 failed connects" in summary
    sent = int(summary.split(": ")[1].split()[0])
    assert sent >= 6


def test_ctrl_c_stops_cleanly(hub_mqtt_url: str, seed: int) -> None:
    process = subprocess.Popen(
        [
            HUB,
            "simulate",
            "--broker",
            hub_mqtt_url,
            "--nodes",
            "4",
            "--interval",
            "0.2",
            "--seed",
            str(seed),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # printed once the broker answered and the fleet starts
    assert first.startswith("Simulating 4 ESP32 node(s)"), first + process.stderr.read()  # type: ignore[union-attr]
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert out.strip().splitlines()[-1].startswith("Stopped after")


def test_unreachable_broker_is_a_clear_error(hub_mqtt_url: str) -> None:
    done = run_hub("simulate", "--broker", "mqtt://127.0.0.1:1", "--nodes", "1", "--duration", "1")
    assert done.returncode == 1
    assert "cannot reach the MQTT broker at 127.0.0.1:1" in done.stderr


def test_bad_broker_url_is_a_usage_error() -> None:
    done = run_hub("simulate", "--broker", "http://127.0.0.1", "--duration", "1")
    assert done.returncode == 2
    assert "expected mqtt://" in done.stderr
