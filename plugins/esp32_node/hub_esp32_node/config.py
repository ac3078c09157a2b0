"""The ``esp32_node:`` section of config.yaml (everything optional; ``{}`` gives the defaults).

::

    esp32_node:
      demo:                      # only used by ``hub run --demo N``
        interval: 5              # seconds between a simulated node's reports
        seed: 2024               # which MACs the demo fleet has (same seed, same nodes)
        power_loss_every: 45     # average seconds between simulated power losses in the fleet; 0 = never
        downtime: 25             # average seconds a node stays without power
"""

from __future__ import annotations

import voluptuous as vol

SECTION = "esp32_node"

_SECONDS = vol.All(vol.Coerce(float), vol.Range(min=0))

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("demo", default={}): vol.Schema(
            {
                vol.Optional("interval", default=5.0): vol.All(vol.Coerce(float), vol.Range(min=0.05)),
                vol.Optional("seed", default=2024): int,
                vol.Optional("power_loss_every", default=45.0): _SECONDS,
                vol.Optional("downtime", default=25.0): _SECONDS,
            }
        ),
    }
)
