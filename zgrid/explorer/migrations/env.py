"""Alembic's entry point for the explorer's migrations: runs them on the connection
:meth:`zgrid.explorer.store.ExplorerStore.migrate` passes in."""

from __future__ import annotations

from alembic import context

from zgrid.explorer.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying a table
)
with context.begin_transaction():
    context.run_migrations()
