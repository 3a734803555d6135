"""Schema migrations with Alembic, configured in code (no alembic.ini) and run whenever a Store opens.

The migration scripts ship inside the package (``migrations/``), so an installed Mailwarden upgrades
its own database. Opening a store first reads the schema version without taking any lock; only when
it is behind does it take the database's migration lock (``BEGIN IMMEDIATE`` on SQLite, an advisory
lock on PostgreSQL), so that scanner workers starting together upgrade once and the others wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text

from mailwarden.errors import StoreError
from mailwarden.store.db import SQLITE_BEGIN_OPTION, safe_url, store_errors

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
PG_MIGRATION_LOCK = 0x6D77_6D69_6772  # "mwmigr": the advisory lock key every migrating process agrees on


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged scripts, optionally carrying the connection to use."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest schema revision this version of Mailwarden knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema up to the newest revision; cheap and lock-free when it is already there."""
    head = head_revision()
    with store_errors("read the schema version of", engine.url), engine.connect() as connection:
        if current_revision(connection) == head:
            return
    with store_errors("migrate", engine.url), _locked_transaction(engine) as connection:
        try:
            command.upgrade(alembic_config(connection), "head")
        except CommandError as exc:
            raise StoreError(f"cannot migrate database {safe_url(engine.url)}: {exc}") from exc


@contextmanager
def _locked_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the migration lock; committed when the block succeeds."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            yield connection
