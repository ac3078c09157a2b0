"""hub-esphome: ESPHome nodes, and any Home Assistant MQTT discovery device, for the ``hub`` IoT hub.

The plugin module is :mod:`hub_esphome.plugin`; discovery ingestion lives in :mod:`hub_esphome.ingest`.
"""

__version__ = "0.1.0"
"""The distribution's version: the one place it is written (pyproject.toml reads it from here)."""
