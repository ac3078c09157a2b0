"""Who judges silence: exactly one process at a time, elected by a PostgreSQL advisory lock.

With several hub processes on one database (workers on RabbitMQ), every worker
hears only its share of the fleet, so no worker's memory may decide that a node
went silent.  The processes that take input compete for one session-level
advisory lock (:data:`LOCK_KEY`, with :class:`hub.Leadership`); only the leader
runs the silence check.  Before each check the leader reads the ``last_seen`` of
the nodes it is about to mark offline from the database (:func:`read_fleet`; the
source of truth, written by whichever worker heard the node, at most
``LAST_SEEN_RESOLUTION`` s stale) into its registry, and every few checks the
whole fleet (:data:`FLEET_ROWS_PER_CHECK`: nodes registered by other processes),
so it judges the whole fleet, not its own share.  Failover is
:class:`hub.Leadership`'s.  On SQLite (one process by construction) the process
is always the leader.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub import Database, Leadership, Metrics

LOCK_KEY = 0x6875622D70726573  # "hub-pres": the advisory lock all hub processes on one database compete for


def presence_leadership(database: Database | None, metrics: Metrics) -> Leadership:
    """The election of the process that marks nodes offline."""
    return Leadership(
        database, metrics, key=LOCK_KEY, job="marks nodes offline (presence leader)", gauge="presence_leader"
    )


FLEET_ROWS_PER_CHECK = 500
"""The leader reads the whole fleet about every ``fleet size / this`` checks (every check up to this size).

Reading 10,000 node rows every second was the part of ingest that grew with the fleet; between
full reads the leader reads only the nodes it is about to mark offline (:func:`read_fleet` with
ids; none while it hears the whole fleet itself), so no node is judged on staler data than
before.  What the full read adds is a backstop for what the RabbitMQ event fan-out normally
brings at once (nodes registered and statuses decided by other processes; the fan-out drops
messages when a process falls behind), known within ``fleet size / FLEET_ROWS_PER_CHECK``
checks (20 s at 10,000 nodes).  At 2,000 rows a check the full reads still cost a 10,000-node
hub 4 % of its ingest time (py-spy), against under 1 % at 100 nodes: the rows read a second, not
the fleet, now bound it.
"""

_FLEET = "SELECT node_id, name, status, status_reason, status_since, last_seen FROM nodes"


async def read_fleet(
    database: Database, node_ids: list[str] | None = None
) -> list[tuple[str, str, str, str | None, float | None, float | None]]:
    """Every node (or those of ``node_ids``) as the database holds it.

    Rows of node_id, name, status, status_reason, status_since, last_seen.
    """
    async with database.connect() as conn:
        if node_ids is None:
            result = await conn.execute(sa.text(_FLEET))
        else:
            result = await conn.execute(sa.text(_FLEET + " WHERE node_id = ANY(:ids)"), {"ids": node_ids})
        return [tuple(row) for row in result]  # type: ignore[misc]
