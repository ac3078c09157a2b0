"""ESPHome's native API (aioesphomeapi): connections to nodes, and what they feed into the registry.

``config`` the ``esphome: native_api:`` section; ``mapping`` aioesphomeapi's models → registry terms (pure);
``device`` one node on the registry's side; ``connection`` one node's client and reconnect logic;
``manager`` all of a hub's connections, discovery and the heartbeat.

Nothing is imported here: aioesphomeapi loads (about 0.4 s) only when the plugin sets up, not for every
``hub`` command that merely reads the config.
"""
