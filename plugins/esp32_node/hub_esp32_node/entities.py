"""What a numeric telemetry key means: unit, Home Assistant device class and state class.

Firmware names its readings freely, so the table is matched three ways: the
whole key (``wifi_rssi``), then its last ``_`` word (``battery_voltage`` is a
voltage), then its first (``temperature_2``).  Keys that match nothing are
plain measurements without a unit.  The device classes and state classes are
Home Assistant's, so a dashboard or an HA bridge can use them as they are.
This runs once per new entity, never per message.
"""

from __future__ import annotations

from typing import NamedTuple

MEASUREMENT = "measurement"
TOTAL_INCREASING = "total_increasing"


class EntitySpec(NamedTuple):
    """How to register a sensor entity for a key."""

    unit: str | None
    device_class: str | None
    state_class: str | None = MEASUREMENT
    name: str | None = None
    """A display name when the default (``free_heap`` → "Free heap") would read badly."""


WELL_KNOWN: dict[str, EntitySpec] = {
    "temperature": EntitySpec("°C", "temperature"),
    "temp": EntitySpec("°C", "temperature", name="Temperature"),
    "humidity": EntitySpec("%", "humidity"),
    "pressure": EntitySpec("hPa", "atmospheric_pressure"),
    "voltage": EntitySpec("V", "voltage"),
    "current": EntitySpec("A", "current"),
    "power": EntitySpec("W", "power"),
    "energy": EntitySpec("kWh", "energy", TOTAL_INCREASING),
    "illuminance": EntitySpec("lx", "illuminance"),
    "lux": EntitySpec("lx", "illuminance", name="Illuminance"),
    "battery": EntitySpec("%", "battery"),
    "co2": EntitySpec("ppm", "carbon_dioxide", name="CO₂"),
    "tvoc": EntitySpec("ppb", "volatile_organic_compounds_parts", name="TVOC"),
    "pm1": EntitySpec("µg/m³", "pm1", name="PM1"),
    "pm25": EntitySpec("µg/m³", "pm25", name="PM2.5"),
    "pm10": EntitySpec("µg/m³", "pm10", name="PM10"),
    "moisture": EntitySpec("%", "moisture"),
    "frequency": EntitySpec("Hz", "frequency"),
    "distance": EntitySpec("m", "distance"),
    "uptime": EntitySpec("s", "duration", TOTAL_INCREASING),
    "free_heap": EntitySpec("B", "data_size"),
    "heap": EntitySpec("B", "data_size"),
    "wifi_rssi": EntitySpec("dBm", "signal_strength", name="Wi-Fi RSSI"),
    "rssi": EntitySpec("dBm", "signal_strength", name="RSSI"),
}
"""Key (or ``_`` word of a key) → what it measures."""

UNKNOWN = EntitySpec(None, None)


def describe(key: str) -> EntitySpec:
    """The spec for a numeric telemetry key (see the module docstring for the matching rules)."""
    spec = WELL_KNOWN.get(key.lower())
    if spec is not None:
        return spec
    words = key.lower().split("_")
    if len(words) > 1:
        for word in (words[-1], words[0]):
            spec = WELL_KNOWN.get(word)
            if spec is not None:
                return spec._replace(name=None)
    return UNKNOWN
