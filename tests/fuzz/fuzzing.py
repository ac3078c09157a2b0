"""Shared by the fuzz tests: one deterministic Hypothesis profile, hostile-input strategies, rejection counts.

CI must be repeatable and fast, so every fuzz test runs with :data:`FUZZ`: a fixed
derandomized seed (the same examples on every run and machine), no example
database, no deadline (a loaded 2-core machine is slow, not wrong) and a bounded
number of examples.  ``HUB_FUZZ_EXAMPLES`` scales the counts up for a long local
run (``HUB_FUZZ_EXAMPLES=20`` runs twenty times as many).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from hub import Hub

SCALE = max(1, int(os.environ.get("HUB_FUZZ_EXAMPLES", "1")))


def fuzz_settings(max_examples: int) -> settings:
    """The CI profile: derandomized, bounded, no database, no deadline, no shrinking time wasted on passing runs."""
    return settings(
        max_examples=max_examples * SCALE,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=True,
    )


def rejections(hub: Hub) -> dict[str, float]:
    """``hub_messages_rejected_total`` by reason: every reason any integration has counted so far."""
    counts: dict[str, float] = {}
    for metric in hub.metrics.registry.collect():
        if metric.name == "hub_messages_rejected":
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["reason"]] = sample.value
    return counts


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three draws in four from ``usual``, one from ``odd``: input that gets past the first check, and some that not."""
    return st.integers(0, 3).flatmap(lambda pick: odd if pick == 0 else usual)


# --- strategies -------------------------------------------------------------------------------------------------

HOSTILE_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from("/+#\x00 \t\n:.-$"), max_size=40
)
"""Text a device can put in a topic level, a key or a string value: any Unicode, plus MQTT's own specials."""

MAC_SPELLINGS = st.sampled_from(
    ["AA:BB:CC:DD:EE:0F", "aabbccddee0f", "AA-BB-CC-DD-EE-0F", "aabb.ccdd.ee0f", "aA:Bb:cC:dD:Ee:0f"]
)
"""One MAC (the fuzzed node) in every spelling the contract accepts, so hostile input hits a known node too."""

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: 2**70 must not reach an int64 column
    | st.floats(allow_nan=True, allow_infinity=True)
    | HOSTILE_TEXT
)

JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4),
    max_leaves=20,
)
"""Any JSON value, NaN and Infinity included (Python's json writes them; strict parsers must refuse them)."""

RESERVED_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": JSON_VALUES,
        "ts": JSON_VALUES,
        "seq": JSON_VALUES,
        "message_id": JSON_VALUES,
        "firmware_version": JSON_VALUES,
        "mac_address": JSON_VALUES | MAC_SPELLINGS,
        "topic_mac": JSON_VALUES,
        "status": JSON_VALUES,
        "temperature": JSON_VALUES,
    },
)
"""Objects that use the contract's reserved keys with hostile values: the paths with the most special cases."""


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"inner": value}
    return value


def dumps(value: Any) -> bytes:
    """Python's json (big integers, NaN and Infinity as the tokens a careless firmware writes)."""
    return json.dumps(value, allow_nan=True).encode()


JSON_OBJECTS = st.dictionaries(HOSTILE_TEXT | st.sampled_from(["temperature", "uptime", "rssi"]), JSON_VALUES)

PAYLOADS = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(dumps),
    JSON_OBJECTS.map(dumps),
    st.builds(lambda reserved, rest: dumps({**rest, **reserved}), RESERVED_VALUES, JSON_OBJECTS),
    st.sampled_from([b"online", b"OFFLINE ", b'"online"', b'{"status": "offline"}', b"", b"null", b"{}", b"[]"]),
    st.integers(min_value=1, max_value=12).map(lambda depth: b"[" * depth * 10 + b"]" * depth * 10),
    st.integers(min_value=6, max_value=10).map(lambda depth: dumps({"t": 1, "deep": _nested(depth)})),
    st.integers(min_value=120, max_value=140).map(lambda keys: dumps({f"k{i}": i for i in range(keys)})),
    st.integers(min_value=60_000, max_value=70_000).map(lambda size: b'{"k": "' + b"x" * size + b'"}'),
)
"""Raw bytes, any JSON, objects with reserved keys, status words, deep nesting, payloads around the size limit."""


POOL_TOPICS = ["fz/sensor/a/state", "fz/status", "fz/switch/b/state", "~/state"]
"""State and availability topics the fuzzed discovery configs point at (so fuzzed states reach consumers)."""

# --- the esp32_node JSON contract ------------------------------------------------------------------------------

ESP32_TOPICS = st.one_of(
    st.builds(lambda mac, leaf: f"devices/{mac}/{leaf}", MAC_SPELLINGS, st.sampled_from(["data", "status"])),
    st.builds(lambda mac, leaf: f"devices/{mac}/{leaf}", HOSTILE_TEXT, st.sampled_from(["data", "status"])),
    st.builds(lambda text: f"devices/{text}", HOSTILE_TEXT),
)

# --- Home Assistant / ESPHome MQTT discovery -------------------------------------------------------------------

KNOWN_COMPONENTS = st.sampled_from(["sensor", "binary_sensor", "switch", "button", "number", "update", "device"])
COMPONENTS = mostly(KNOWN_COMPONENTS, HOSTILE_TEXT)
KNOWN_IDS = st.sampled_from(["fz", "node_1", "a", "020000000009"])
IDS = mostly(KNOWN_IDS, HOSTILE_TEXT)
"""Mostly ids the topic rules accept (so configs get past the topic check), sometimes anything."""
DISCOVERY_TOPICS = st.one_of(
    st.builds(lambda c, o: f"homeassistant/{c}/{o}/config", COMPONENTS, IDS),
    st.builds(lambda c, n, o: f"homeassistant/{c}/{n}/{o}/config", COMPONENTS, IDS, IDS),
)
TOPIC_VALUES = st.sampled_from(POOL_TOPICS) | JSON_VALUES
CONFIG_FIELDS = {
    "~": st.sampled_from(["fz", "fz/sensor/a"]) | JSON_VALUES,
    "stat_t": TOPIC_VALUES,
    "state_topic": TOPIC_VALUES,
    "avty_t": TOPIC_VALUES,
    "avty": st.lists(st.fixed_dictionaries({}, optional={"t": TOPIC_VALUES, "topic": TOPIC_VALUES}), max_size=3)
    | JSON_VALUES,
    "avty_mode": st.sampled_from(["all", "any", "latest"]) | JSON_VALUES,
    "name": HOSTILE_TEXT | JSON_VALUES,
    "uniq_id": HOSTILE_TEXT | JSON_VALUES,
    "unit_of_meas": HOSTILE_TEXT | JSON_VALUES,
    "dev_cla": HOSTILE_TEXT | JSON_VALUES,
    "val_tpl": st.sampled_from(["{{ value_json.t }}", "{{ value | float }}", "{% raw %}"]) | JSON_VALUES,
    "exp_aft": JSON_VALUES,
    "pl_on": JSON_VALUES,
    "pl_avail": JSON_VALUES,
    "cmd_t": TOPIC_VALUES,
    "options": JSON_VALUES,
    "dev": st.fixed_dictionaries(
        {},
        optional={
            "ids": st.sampled_from(["fz", "02:00:00:00:00:09"]) | JSON_VALUES,
            "cns": st.lists(st.tuples(st.just("mac"), JSON_VALUES | MAC_SPELLINGS).map(list), max_size=2) | JSON_VALUES,
            "name": HOSTILE_TEXT | JSON_VALUES,
            "sw": JSON_VALUES,
        },
    )
    | JSON_VALUES,
    "cmps": st.dictionaries(
        IDS, st.fixed_dictionaries({"p": COMPONENTS | JSON_VALUES}, optional={"stat_t": TOPIC_VALUES}), max_size=3
    )
    | JSON_VALUES,
}
CONFIGS = st.fixed_dictionaries({}, optional=CONFIG_FIELDS).map(dumps)
DISCOVERY_PAYLOADS = mostly(CONFIGS, PAYLOADS)
ESPHOME_MESSAGES = st.one_of(
    st.tuples(DISCOVERY_TOPICS, DISCOVERY_PAYLOADS),
    st.tuples(st.sampled_from(POOL_TOPICS), PAYLOADS),
    st.tuples(st.builds(lambda name: f"esphome/discover/{name}", IDS), PAYLOADS | JSON_VALUES.map(dumps)),
)

MESSAGES = st.lists(st.tuples(ESP32_TOPICS, PAYLOADS) | ESPHOME_MESSAGES, min_size=1, max_size=12)
"""A batch of hostile (topic, payload) pairs for the JSON contract and for MQTT discovery."""
