"""The embedded-broker tests share the MQTT test helpers (paho peer, free ports) in tests/mqtt/mqtt_helpers.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mqtt"))
