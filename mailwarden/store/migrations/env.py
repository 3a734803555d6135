"""Alembic environment: migrations always run on a connection handed over by ``mailwarden.store.migrate``.

There is no alembic.ini and no URL here; the caller opens the engine (with its SQLite pragmas or psycopg
driver), begins the transaction and takes the migration lock, so this file only wires up the metadata.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from mailwarden.store.models import Base


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations with mailwarden.store.migrate.upgrade(); it passes the connection")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; upgrade a live database")
run_migrations_online()
