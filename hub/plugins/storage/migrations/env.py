"""alembic environment for the storage plugin: runs on the connection :mod:`..migrate` hands over.

There is no alembic.ini and no offline (``--sql``) mode: the hub always
migrates a live database, inside the transaction its caller opened.
"""

from alembic import context

from hub.plugins.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
