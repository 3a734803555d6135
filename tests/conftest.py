"""Shared fixtures: the databases a store test runs against.

``database_url`` runs a test twice: on a fresh SQLite file under ``tmp_path`` and on a fresh schema of
the PostgreSQL server on 127.0.0.1:5432 (database ``test``, trust auth, user ``postgres`` or ``root``).
Each PostgreSQL test gets its own schema (selected with ``search_path`` in the URL), dropped afterwards.
When the server is unreachable the PostgreSQL cases fail under ``CI=true`` and are skipped otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_DATABASE = "test"
PG_USERS = ("postgres", "root")


def _postgres_unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


def _admin_connection(user: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user=user, autocommit=True,
                           connect_timeout=5)


@pytest.fixture(scope="session")
def postgresql_user() -> str:
    """The first of PG_USERS the server accepts."""
    problems = []
    for user in PG_USERS:
        try:
            with _admin_connection(user):
                return user
        except psycopg.Error as exc:
            problems.append(f"{user}: {str(exc).strip()}")
    _postgres_unavailable(f"{PG_HOST}:{PG_PORT}/{PG_DATABASE}: " + "; ".join(problems))


@pytest.fixture
def postgresql_url(postgresql_user: str) -> Iterator[str]:
    """A plain ``postgresql://`` URL whose connections use a new, empty schema of their own."""
    schema = f"mwtest_{uuid.uuid4().hex[:12]}"
    with _admin_connection(postgresql_user) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (f"postgresql://{postgresql_user}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"
               f"?options=-csearch_path%3D{schema}")
    finally:
        with _admin_connection(postgresql_user) as admin:
            admin.execute("SET lock_timeout = '10s'")  # a leaked session fails teardown, not hangs it
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a data dir that does not exist yet (the store creates it)."""
    return f"sqlite:///{tmp_path / 'data' / 'mailwarden.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each supported database in turn, fresh for the test."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
