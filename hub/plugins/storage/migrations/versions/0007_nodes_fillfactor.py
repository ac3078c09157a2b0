"""PostgreSQL: ``nodes`` keeps half of each page free, so the writer's ``last_seen`` updates are HOT.

Revision ID: 0007
Revises: 0006

SQLite: nothing changes (it has no fill factor).

The writer moves each node's ``last_seen`` forward every few seconds
(storage/batch.py's ``LAST_SEEN_RESOLUTION``): in a 10,000-node fleet
publishing every 5 s, about one row update a message.  On full pages (the
default fill factor, 100) PostgreSQL wrote most of those as new tuples on
other pages, with an entry in both of the table's indexes each: 8.8 µs a
row in the ingest benchmark, 18 % of the updates HOT.  With room left on the
page the new version stays beside the old and no index is touched: 3.9 µs,
all of them HOT.  The table is one row a node, so twice its size is nothing.

Online: ``ALTER TABLE … SET (fillfactor)`` changes the catalogue only; pages
written from now on keep the room (existing ones gain it as vacuum frees
their dead tuples).  Downgrade resets it.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NODES_FILLFACTOR = 50
"""As schema.py's ``nodes`` table (a migration keeps its own copy: it is a snapshot of its revision)."""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE nodes SET (fillfactor = {NODES_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE nodes RESET (fillfactor)")
