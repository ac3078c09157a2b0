"""hub-esphome: ESPHome (and any Home Assistant MQTT discovery) devices for the hub."""
