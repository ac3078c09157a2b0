"""hub-esp32-node: ESP32 nodes speaking the JSON MQTT contract, for the ``hub`` IoT hub.

The plugin module is :mod:`hub_esp32_node.plugin`; the contract is described in
:mod:`hub_esp32_node.contract`; ``hub simulate`` and ``hub run --demo`` run the hub's
simulated nodes (:mod:`hub.simulator`).
"""

__version__ = "0.1.0"
"""The distribution's version: the one place it is written (pyproject.toml reads it from here)."""
