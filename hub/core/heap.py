"""Keeping the fleet out of the garbage collector's reach as it grows after start.

:func:`hub.core.hub.freeze_startup_heap` freezes what exists once the hub has
started (``gc.freeze``).  A fleet that registers afterwards (a first start on an
empty database, nodes joining) is not in that frozen heap: its nodes, entities,
routes and presence records, a few dozen containers a node, land in the oldest
generation, and every full collection walks all of them.  At 10,000 nodes that
was measured at 6 % of the hub's ingest time against 3 % at 100 nodes (py-spy,
``benchmarks/profile_shares.py``).

So a background task looks at the fleet size every :data:`CHECK_INTERVAL`
seconds, and once it grew by :data:`MIN_GROWTH` nodes and by a quarter since the
last freeze it collects the young generations and freezes again; the quarter
makes refreezes geometric: about ten from an empty database to 10,000 nodes.
Not a full collection: at 10,000 nodes that walk took 0.5 s inside the loaded
ingest benchmark (py-spy), a pause on the ingest path; over a fresh 10,000-node
registry a full collection took 75 ms here, a young one 20 ms.
Frozen objects are still freed by reference counting; only a reference cycle
among them would wait (forever): the registry's objects form none, and what
else survived into the oldest generation since the last freeze is a few
objects against the fleet's hundreds of thousands.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Sized

_LOGGER = logging.getLogger(__name__)

CHECK_INTERVAL = 10.0
"""Seconds between looks at the fleet size."""
MIN_GROWTH = 1_000
"""Nodes the fleet must have grown by (and by a quarter) before the heap is frozen again."""


def refreeze_if_grown(fleet: Sized, frozen_at: int) -> int:
    """Collect and freeze again if ``fleet`` grew enough since it had ``frozen_at`` nodes; returns the new mark."""
    size = len(fleet)
    if size - frozen_at < max(MIN_GROWTH, frozen_at // 4):
        return frozen_at
    started = time.perf_counter()
    gc.collect(1)
    gc.freeze()
    _LOGGER.debug(
        "Fleet grew from %d to %d nodes: heap frozen again (%.0f ms)",
        frozen_at,
        size,
        1e3 * (time.perf_counter() - started),
    )
    return size


async def keep_fleet_frozen(fleet: Sized, interval: float = CHECK_INTERVAL) -> None:
    """Run :func:`refreeze_if_grown` every ``interval`` seconds, for as long as the hub runs."""
    frozen_at = len(fleet)
    while True:
        await asyncio.sleep(interval)
        frozen_at = refreeze_if_grown(fleet, frozen_at)
