"""The core: lifecycle, event bus, node registry, services, config. It knows nothing of MQTT, SQL or HTTP."""
