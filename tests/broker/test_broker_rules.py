"""The ACL rules and the failure throttle on their own: topic matching, filter coverage, bucket arithmetic."""

from __future__ import annotations

import pytest

from hub.plugins.broker.acl import device_rules, mosquitto_block
from hub.plugins.broker.credentials import DeviceCredential
from hub.plugins.broker.throttle import FailureThrottle
from hub.testing import FakeClock

DEVICE = DeviceCredential("aabbccddeeff", "aa:bb:cc:dd:ee:ff", "$7$101$x$y", 0.0, "kitchen")


@pytest.mark.parametrize(
    ("topic", "allowed"),
    [
        ("devices/aabbccddeeff/data", True),
        ("devices/aabbccddeeff/status", True),
        ("devices/aabbccddeeff/ack", True),
        ("devices/aabbccddeeff/commands", False),
        ("devices/aabbccddeeff/data/x", False),
        ("devices/AABBCCDDEEFF/data", False),
        ("devices/aa:bb:cc:dd:ee:ff/data", False),
        ("devices/112233445566/data", False),
        ("kitchen", True),
        ("kitchen/status", True),
        ("kitchen/sensor/temperature/state", True),
        ("kitchenette/status", False),
        ("homeassistant/sensor/kitchen/temperature/config", True),
        ("homeassistant/sensor/kitchen/config", False),
        ("homeassistant/sensor/garage/temperature/config", False),
        ("homeassistant/status", False),
        ("esphome/discover/kitchen", True),
        ("esphome/discover/garage", False),
    ],
)
def test_what_a_device_may_publish(topic, allowed) -> None:
    assert device_rules(DEVICE).may_publish(topic) is allowed


@pytest.mark.parametrize(
    ("topic_filter", "allowed"),
    [
        ("devices/aabbccddeeff/commands", True),
        ("devices/+/commands", False),
        ("devices/aabbccddeeff/+", False),
        ("devices/#", False),
        ("#", False),
        ("+/status", False),
        ("kitchen/#", True),
        ("kitchen/+/+/command", True),
        ("kitchen", True),
        ("homeassistant/status", True),
        ("homeassistant/+", False),
        ("esphome/discover", True),
        ("esphome/discover/kitchen", False),
        ("garage/#", False),
    ],
)
def test_what_a_device_may_subscribe(topic_filter, allowed) -> None:
    assert device_rules(DEVICE).may_subscribe(topic_filter) is allowed


def test_the_discovery_prefix_follows_the_config() -> None:
    rules = device_rules(DEVICE, "ha")
    assert rules.may_publish("ha/sensor/kitchen/t/config") and not rules.may_publish(
        "homeassistant/sensor/kitchen/t/config"
    )
    assert rules.may_receive("ha/status")
    assert "topic read ha/status" in mosquitto_block([DEVICE], "ha")
    json_only = DeviceCredential("112233445566", "11:22:33:44:55:66", "$7$101$x$y", 0.0)
    assert "112233445566" not in mosquitto_block([json_only])  # the shipped %u patterns cover it


def test_the_throttle_allows_a_burst_then_refills_and_forgets() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(3, per_minute=6, clock=clock)
    for _ in range(3):
        assert not throttle.blocked("10.0.0.5")
        throttle.failed("10.0.0.5")
    assert throttle.blocked("10.0.0.5") and not throttle.blocked("10.0.0.6")
    clock.advance(9.9)
    assert throttle.blocked("10.0.0.5")
    clock.advance(0.2)  # one failure back every 10 s
    assert not throttle.blocked("10.0.0.5")
    throttle.failed("10.0.0.5")
    assert throttle.blocked("10.0.0.5")
    clock.advance(30)
    assert not throttle.blocked("10.0.0.5") and len(throttle) == 0  # refilled: forgotten


def test_the_throttle_keeps_at_most_max_keys() -> None:
    throttle = FailureThrottle(1, per_minute=1, max_keys=100, clock=FakeClock())
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) == 100 and throttle.blocked("10.0.3.231") and not throttle.blocked("10.0.0.0")
