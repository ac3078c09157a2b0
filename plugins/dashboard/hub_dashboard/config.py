"""The ``dashboard:`` section of config.yaml (everything optional; ``{}`` gives the defaults).

::

    dashboard:
      stale_after: 120   # s: an online node silent this long is shown as "stale" (presence has not
                         # timed it out yet, but its readings are getting old)
"""

from __future__ import annotations

import voluptuous as vol

SECTION = "dashboard"

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("stale_after", default=120.0): vol.All(vol.Coerce(float), vol.Range(min=1.0, max=7 * 86400.0)),
    }
)
