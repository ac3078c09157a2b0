"""Built-in presence: offline detection for every node, whatever contract it speaks.

It listens to the registry's events only (``state_reported``,
``availability_reported``), so any integration that reports through the
registry gets presence for free; the rules and their costs are in
:mod:`.tracker`, the interval learning in :mod:`.interval`.

``presence:`` in config.yaml (all optional)::

    presence:
      timeout: 10           # s: least silence before offline, once the node's rhythm is learned
      initial_timeout: 90   # s: least silence while the rhythm is still unknown
      interval_factor: 3    # allowed silence >= this x the learned publish interval
      interval_window: 8    # intervals the learned interval is taken from (its hysteresis)
      check_interval: 1     # s: how often silence is checked

Why these defaults.  The allowed silence is ``max(timeout, 3 x interval)``:
a 10 s publisher is marked offline 30 s after it stops, a 60 s one after 180 s
(its jitter would have to triple a gap to flap it), and the floor of 10 s
catches a fast (1–3 s) publisher within seconds while keeping a sub-second
publisher from flapping on a broker hiccup.  Until three intervals are learned
the floor is ``initial_timeout``: 90 s covers a 60 s publisher with 50 % to
spare, so a typical 10–60 s node never flaps while presence is still learning
it.  A node whose connection drops is faster still: its LWT marks it offline
the moment the broker notices (1.5 x its keepalive).

The tracker is in ``hub.data[DATA_PRESENCE]`` (tests drive its ``check(now)``
with a fake clock).  With several processes on one PostgreSQL database (workers
on RabbitMQ) only one of them, the leader elected by an advisory lock, runs the
silence check, from the ``last_seen`` the database holds (:mod:`.leader`).
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from hub import DATA_DATABASE, Hub, HubKey, Leadership, Manifest, Node, hookimpl

from .leader import FLEET_ROWS_PER_CHECK, presence_leadership, read_fleet
from .tracker import PresenceTracker

MANIFEST = Manifest(name="presence", after=("storage", "mqtt"), sections=("presence",))
"""After storage: it takes stock of the restored fleet at set-up.  After mqtt: it judges silence only while
the transport listens, starting once it is connected and stopping before it stops taking messages."""

DATA_PRESENCE: HubKey[PresenceTracker] = HubKey("presence.tracker")
"""Key of the :class:`PresenceTracker` in ``hub.data``."""
DATA_LEADERSHIP: HubKey[Leadership] = HubKey("presence.leadership")
"""Key of the :class:`~.leader.Leadership` in ``hub.data``: whether this process judges silence."""


def _seconds(minimum: float, maximum: float = 7 * 86400.0) -> vol.All:
    return vol.All(vol.Coerce(float), vol.Range(min=minimum, max=maximum))


CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("timeout", default=10.0): _seconds(0.1),
        vol.Optional("initial_timeout", default=90.0): _seconds(0.1),
        vol.Optional("interval_factor", default=3.0): vol.All(vol.Coerce(float), vol.Range(min=1.0, max=100.0)),
        vol.Optional("interval_window", default=8): vol.All(int, vol.Range(min=3, max=64)),
        vol.Optional("check_interval", default=1.0): _seconds(0.01, 60.0),
    }
)


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """Presence owns the ``presence:`` section."""
    return {"presence": CONFIG_SCHEMA}


@hookimpl
def hub_setup(hub: Hub) -> None:
    """Listen from now on, so no message is missed; where input is judged, take stock of the restored fleet.

    Taking stock here, not in ``hub_start``, sees the fleet as restored: messages the transport
    delivers once it connects (it starts before this plugin's ``hub_start``) would hide the downtime.
    """
    tracker = PresenceTracker(
        hub.registry, hub.bus, hub.metrics, hub.clock, monotonic=hub.monotonic, **hub.config["presence"]
    )
    tracker.attach()
    if hub.role.takes_input:
        tracker.start(hub.clock())
    hub.data[DATA_PRESENCE] = tracker


@hookimpl
def hub_start(hub: Hub) -> None:
    """Start judging silence, in roles that take input (a one-off CLI command hears nothing)."""
    tracker = hub.data.get(DATA_PRESENCE)
    if tracker is None or not hub.role.takes_input:
        return
    database = hub.data.get(DATA_DATABASE)
    leadership = hub.data[DATA_LEADERSHIP] = presence_leadership(database, hub.metrics)
    if leadership.elected and database is not None:
        full_read_in = 0

        async def judge() -> bool:
            """Only the leader checks, and first learns from the database what the other processes heard.

            The whole fleet every few checks (see FLEET_ROWS_PER_CHECK), else only the nodes this
            process would now mark offline (none while it hears the whole fleet itself).
            """
            nonlocal full_read_in
            if not leadership.leader:
                return False
            full_read_in -= 1
            if full_read_in <= 0:
                rows = await read_fleet(database)
                full_read_in = len(rows) // FLEET_ROWS_PER_CHECK
            else:
                silent = tracker.due(hub.clock() + tracker.check_interval)
                if not silent:
                    return leadership.leader
                rows = await read_fleet(database, silent)
            for node_id, name, status, reason, since, seen in rows:
                node = hub.registry.get(node_id)
                if node is None:  # registered by another process: known from the database (the source of truth)
                    node = Node(node_id=node_id, name=name, status=status, status_reason=reason, status_since=since)
                    hub.registry.restore([node])
                elif since is not None and (node.status_since is None or since > node.status_since):
                    node.status, node.status_reason, node.status_since = status, reason, since  # decided elsewhere
                if seen is not None:
                    tracker.observe(node_id, seen)
            return leadership.leader

        tracker.gate = judge
    leadership.start(hub.create_task)
    tracker.start_checking(hub.create_task)


@hookimpl
async def hub_stop(hub: Hub) -> None:
    """Stop the silence check before transports disconnect: a deaf hub must not time the fleet out; hand over."""
    tracker = hub.data.get(DATA_PRESENCE)
    if tracker is not None:
        tracker.stop()
    leadership = hub.data.pop(DATA_LEADERSHIP, None)
    if leadership is not None:
        await leadership.stop()


__all__ = ["CONFIG_SCHEMA", "DATA_LEADERSHIP", "DATA_PRESENCE", "Leadership", "PresenceTracker"]
