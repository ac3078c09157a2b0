"""The exact MQTT messages a stock ESPHome 2026.10 node sends, for the plugin's tests (and benchmarks).

Built the way ``esphome/components/mqtt`` builds them (mqtt_component.cpp
``send_discovery_``, mqtt_sensor.cpp, mqtt_binary_sensor.cpp, mqtt_switch.cpp,
mqtt_button.cpp, mqtt_update.cpp, mqtt_client.cpp ``send_device_info_``): keys
abbreviated, in ESPHome's order; ``discovery_unique_id_generator: mac``
(``<mac>-<component>-<fnv1 hash of the entity name>``); the default
``<node>/status`` birth ``online`` and Will ``offline``, both retained; states
retained (ESPHome's default).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

Message = tuple[str, bytes, bool]
"""topic, payload, retained."""


def fnv1_hash(text: str) -> int:
    """ESPHome's ``fnv1_hash`` (core/helpers.cpp): FNV-1, multiply then xor."""
    value = 2166136261
    for byte in text.encode():
        value = (value * 16777619) & 0xFFFFFFFF
        value ^= byte
    return value


def random_mac() -> str:
    """A fresh MAC as ESPHome writes it in topics and ids: 12 lower-case hex digits."""
    return "".join(f"{random.randrange(256):02x}" for _ in range(6))


@dataclass
class EsphomeNode:
    """One ESPHome node: its name, MAC and the discovery prefix it was built with."""

    name: str
    mac: str = field(default_factory=random_mac)
    friendly_name: str = ""
    prefix: str = "homeassistant"
    version: str = "2026.10.0"
    board: str = "esp32dev"

    @property
    def status_topic(self) -> str:
        return f"{self.name}/status"

    @property
    def node_id(self) -> str:
        return ":".join(self.mac[i : i + 2] for i in range(0, 12, 2))

    def device(self) -> dict[str, Any]:
        return {
            "ids": self.mac,
            "name": self.friendly_name or self.name,
            "sw": f"{self.version} (config hash 0x1a2b3c4d)",
            "mdl": self.board,
            "mf": "Espressif",
            "cns": [["mac", self.mac]],
        }

    def _finish(self, component: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
        data["avty_t"] = self.status_topic
        data["uniq_id"] = f"{self.mac}-{component}-{fnv1_hash(name):08x}"
        data["dev"] = self.device()
        return data

    def config_topic(self, component: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{self.name}/{object_id}/config"

    # --- discovery configs -----------------------------------------------------------
    def sensor(
        self,
        object_id: str,
        name: str,
        unit: str,
        device_class: str | None,
        *,
        accuracy: int = 1,
        expire_after: int | None = None,
        entity_category: str | None = None,
    ) -> Message:
        data: dict[str, Any] = {"sug_dsp_prc": accuracy, "unit_of_meas": unit}
        if expire_after:
            data["exp_aft"] = expire_after
        data["stat_cla"] = "measurement"
        data["name"] = name
        if device_class:
            data["dev_cla"] = device_class
        if entity_category:
            data["ent_cat"] = entity_category
        data["stat_t"] = f"{self.name}/sensor/{object_id}/state"
        return self._config("sensor", object_id, self._finish("sensor", name, data))

    def status_binary_sensor(self) -> Message:
        data = {
            "pl_on": "online",
            "pl_off": "offline",
            "name": "Status",
            "dev_cla": "connectivity",
            "ent_cat": "diagnostic",
            "stat_t": self.status_topic,
        }
        return self._config("binary_sensor", "status", self._finish("binary_sensor", "Status", data))

    def binary_sensor(self, object_id: str, name: str, device_class: str) -> Message:
        data = {"name": name, "dev_cla": device_class, "stat_t": f"{self.name}/binary_sensor/{object_id}/state"}
        return self._config("binary_sensor", object_id, self._finish("binary_sensor", name, data))

    def switch(self, object_id: str, name: str) -> Message:
        data = {
            "name": name,
            "ic": "mdi:electric-switch",
            "stat_t": f"{self.name}/switch/{object_id}/state",
            "cmd_t": f"{self.name}/switch/{object_id}/command",
        }
        return self._config("switch", object_id, self._finish("switch", name, data))

    def button(self, object_id: str, name: str) -> Message:
        data = {
            "name": name,
            "dev_cla": "restart",
            "ent_cat": "config",
            "cmd_t": f"{self.name}/button/{object_id}/command",
        }
        return self._config("button", object_id, self._finish("button", name, data))

    def number(self, object_id: str, name: str, minimum: float, maximum: float, step: float) -> Message:
        """mqtt_number.cpp: ``min``, ``max``, ``step`` (the mode only when it is not ``auto``), a command topic."""
        data: dict[str, Any] = {"min": minimum, "max": maximum, "step": step, "name": name}
        data["stat_t"] = f"{self.name}/number/{object_id}/state"
        data["cmd_t"] = f"{self.name}/number/{object_id}/command"
        return self._config("number", object_id, self._finish("number", name, data))

    def update(self, object_id: str = "firmware", name: str = "Firmware") -> Message:
        data = {
            "schema": "json",
            "pl_inst": "INSTALL",
            "name": name,
            "dev_cla": "firmware",
            "ent_cat": "config",
            "stat_t": f"{self.name}/update/{object_id}/state",
            "cmd_t": f"{self.name}/update/{object_id}/command",
        }
        return self._config("update", object_id, self._finish("update", name, data))

    def _config(self, component: str, object_id: str, data: dict[str, Any]) -> Message:
        return self.config_topic(component, object_id), orjson.dumps(data), True

    def remove(self, component: str, object_id: str) -> Message:
        """What ``discovery: CLEAN`` (or a removed component) sends: an empty retained config."""
        return self.config_topic(component, object_id), b"", True

    # --- the rest ---------------------------------------------------------------------
    def birth(self) -> Message:
        return self.status_topic, b"online", True

    def will(self) -> Message:
        """The Last Will the broker publishes when the node drops off (retained)."""
        return self.status_topic, b"offline", True

    def state(self, component: str, object_id: str, value: str | bytes, *, retained: bool = False) -> Message:
        payload = value if isinstance(value, bytes) else value.encode()
        return f"{self.name}/{component}/{object_id}/state", payload, retained

    def update_state(self, installed: str, latest: str) -> Message:
        data = {"installed_version": installed, "latest_version": latest, "title": self.friendly_name or self.name}
        return self.state("update", "firmware", orjson.dumps(data))

    def device_info(self, ip: str = "127.0.0.1") -> Message:
        data = {
            "ip": ip,
            "name": self.name,
            **({"friendly_name": self.friendly_name} if self.friendly_name else {}),
            "version": self.version,
            "mac": self.mac,
            "platform": "ESP32",
            "board": self.board,
            "network": "wifi",
        }
        return f"esphome/discover/{self.name}", orjson.dumps(data), True

    def climate_node(self) -> list[Message]:
        """What a DHT22 climate node with a relay, a restart button and an update entity sends on connecting."""
        return [
            self.birth(),
            self.sensor("temperature", "Temperature", "°C", "temperature"),
            self.state("sensor", "temperature", "21.4", retained=True),
            self.sensor("humidity", "Humidity", "%", "humidity", accuracy=0),
            self.state("sensor", "humidity", "48", retained=True),
            self.status_binary_sensor(),
            self.switch("relay", "Relay"),
            self.state("switch", "relay", "OFF", retained=True),
            self.button("restart", "Restart"),
            self.update(),
            self.device_info(),
        ]
