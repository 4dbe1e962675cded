"""Alembic environment: runs on the connection computectl hands it."""

from __future__ import annotations

from alembic import context

from compute.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def run() -> None:
    if connection is None:
        engine = config.attributes["engine"]
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=metadata(), render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=metadata(), render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
