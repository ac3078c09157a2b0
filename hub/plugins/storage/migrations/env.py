"""alembic environment shared by the core schema and every plugin's: runs on the connection :mod:`..migrate` hands over.

There is no alembic.ini and no offline (``--sql``) mode: the hub always
migrates a live database, inside the transaction its caller opened.  Each
owner's version table comes from the config; autogenerate compares only the
owner's own tables (``metadata``), so it never proposes dropping another's, and
writes alterations as batch operations, which run on both dialects wherever the
revision was generated (SQLite recreates the table, PostgreSQL just alters it).
"""

from alembic import context

from hub.plugins.storage.schema import is_partition

config = context.config
connection = config.attributes["connection"]
metadata = config.attributes.get("metadata")


def _own_tables_only(name, type_, parent_names):
    return type_ != "table" or metadata is None or (name in metadata.tables and not is_partition(name))


context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.attributes["version_table"],
    include_name=_own_tables_only,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
