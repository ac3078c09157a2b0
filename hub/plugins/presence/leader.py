"""Who judges silence: exactly one process at a time, elected by a PostgreSQL advisory lock.

With several hub processes on one database (workers on RabbitMQ), every worker
hears only its share of the fleet, so no worker's memory may decide that a node
went silent.  The processes that take input compete for one session-level
advisory lock (:data:`LOCK_KEY`, with :class:`hub.Leadership`); only the leader
runs the silence check.  Before each check the leader reads every node's
``last_seen`` from the database (:func:`read_fleet`; the source of truth,
written by whichever worker heard the node, at most ``LAST_SEEN_RESOLUTION`` s
stale) into its registry, so it judges the whole fleet, not its own share.
Failover is :class:`hub.Leadership`'s.  On SQLite (one process by
construction) the process is always the leader.
"""

from __future__ import annotations

from hub import Database, Leadership, Metrics

LOCK_KEY = 0x6875622D70726573  # "hub-pres": the advisory lock all hub processes on one database compete for


def presence_leadership(database: Database | None, metrics: Metrics) -> Leadership:
    """The election of the process that marks nodes offline."""
    return Leadership(
        database, metrics, key=LOCK_KEY, job="marks nodes offline (presence leader)", gauge="presence_leader"
    )


async def read_fleet(database: Database) -> list[tuple[str, str, str, str | None, float | None, float | None]]:
    """Every node as the database holds it: node_id, name, status, status_reason, status_since, last_seen."""
    async with database.connect() as conn:
        result = await conn.exec_driver_sql(
            "SELECT node_id, name, status, status_reason, status_since, last_seen FROM nodes"
        )
        return [tuple(row) for row in result]  # type: ignore[misc]
