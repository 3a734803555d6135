"""Engines for the two supported databases, and the boundary where database errors become StoreError.

SQLite (the embedded default) runs in WAL mode so that scanner processes can read while ``learn`` or the
gateway writes; SQLAlchemy rather than pysqlite emits ``BEGIN``, so that DDL is transactional too and a
failed migration leaves nothing half done. PostgreSQL always goes through psycopg 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from mailwarden.errors import StoreError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_S = 30.0  # a writer holds the lock for one transaction; readers never wait in WAL mode

# Execution option naming the statement that opens a transaction on SQLite; the migration runner asks
# for ``BEGIN IMMEDIATE`` so that two processes upgrading at once take turns instead of failing.
SQLITE_BEGIN_OPTION = "mailwarden_sqlite_begin"


def parse_url(raw: str) -> URL:
    """The database URL to connect to; plain ``postgresql://`` (or ``postgres://``) gets psycopg 3."""
    try:
        url = make_url(raw)
    except SQLAlchemyError as exc:  # ArgumentError: not a URL at all
        raise StoreError(f"invalid database URL {raw!r}: expected sqlite:///PATH or postgresql://") from exc
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(f"unsupported database {backend!r} in {safe_url(url)}: use sqlite:/// or postgresql://")
    return url


def safe_url(url: URL) -> str:
    """The URL for messages and logs, without its password."""
    return url.render_as_string(hide_password=True)


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for other backends and in-memory databases."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):  # a URI filename: the path is everything before any query
        return Path(url.database.removeprefix("file:").split("?", 1)[0])
    return Path(url.database)


def make_engine(raw_url: str) -> Engine:
    """An engine for the URL, with the per-connection setup its backend needs; does not connect yet."""
    url = parse_url(raw_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    with store_errors("open", url):
        return create_engine(url, pool_pre_ping=True)


def _sqlite_engine(url: URL) -> Engine:
    path = sqlite_file(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {path.parent}: {exc}") from exc
    with store_errors("open", url):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Per connection: WAL, fsync only at checkpoints, enforced foreign keys, and no implicit BEGIN."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "BEGIN"))


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """A transaction that reads before it writes. On SQLite it takes the write lock at once (``BEGIN
    IMMEDIATE``): a deferred one would fail with "database is locked" when another writer commits between
    its first read and its first write, instead of waiting its turn."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        with connection.begin():
            yield connection


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's own message: SQLAlchemy's text repeats the statement and (possibly huge) parameters."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig).strip()
    return str(exc).split("\n", 1)[0]


@contextmanager
def store_errors(action: str, url: URL) -> Iterator[None]:
    """Translate SQLAlchemy and driver errors into StoreError, naming what failed and where."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot {action} database {safe_url(url)}: {_reason(exc)}") from exc
