"""The Store: one database per data dir, opened and migrated once, with the profiles learned from mail.

Loading and saving work on whole ``Profiles`` at once with Core statements (one ``SELECT``, batched
upserts), because ``learn`` rewrites thousands of profiles and the scanner loads them all at start-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, Insert, Row, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from mailwarden.config import Settings
from mailwarden.profiles import Profile, Profiles
from mailwarden.store.db import make_engine, parse_url, sqlite_file, store_errors
from mailwarden.store.migrate import upgrade
from mailwarden.store.models import Base, ProfileRow

SAVE_BATCH = 1000  # rows per executemany: bounds memory per statement, keeps round trips few
PROFILES: Table = Base.metadata.tables[ProfileRow.__tablename__]


class Store:
    """Mailwarden's database. Open with ``Store.open(settings)``; use as a context manager to close it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, settings: Settings) -> Self:
        """Connect to the configured database (SQLite in the data dir by default) and migrate it."""
        engine = make_engine(settings.database_url)
        try:
            upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        """Close every pooled connection (SQLite files and PostgreSQL sessions are released)."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def load_profiles(self) -> Profiles:
        """Every stored profile, in one query."""
        profiles = Profiles()
        with store_errors("load profiles from", self.engine.url), self.engine.connect() as connection:
            for row in connection.execute(select(PROFILES)):
                profile = _profile_from_row(row)
                table = profiles.senders if profile.kind == "sender" else profiles.domains
                table[profile.key] = profile
        return profiles

    def save_profiles(self, profiles: Profiles) -> None:
        """Write every profile (insert new ones, overwrite stored ones), all in one transaction."""
        rows = [_row_from_profile(p) for p in (*profiles.senders.values(), *profiles.domains.values())]
        if not rows:
            return
        with store_errors("save profiles to", self.engine.url), self.engine.begin() as connection:
            statement = _upsert(connection)
            for batch in _batches(rows, SAVE_BATCH):
                connection.execute(statement, batch)


def load_profiles(settings: Settings) -> Profiles:
    """The learned profiles for scanning; empty, without creating anything, before the first ``learn``."""
    path = sqlite_file(parse_url(settings.database_url))
    if path is not None and not path.exists():
        return Profiles()
    with Store.open(settings) as store:
        return store.load_profiles()


def _profile_from_row(row: Row[Any]) -> Profile:
    values = row._mapping
    return Profile(
        kind=values["kind"],
        key=values["key"],
        first_seen=values["first_seen"],
        last_seen=values["last_seen"],
        count=values["count"],
        **{name: set(values[name]) for name in Profile.SET_FIELDS},
    )


def _row_from_profile(profile: Profile) -> dict[str, Any]:
    return {
        "kind": profile.kind,
        "key": profile.key,
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "count": profile.count,
        **{name: sorted(getattr(profile, name)) for name in Profile.SET_FIELDS},
    }


def _upsert(connection: Connection) -> Insert:
    """INSERT ... ON CONFLICT (kind, key) DO UPDATE, in the dialect's own syntax (both have one)."""
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(PROFILES)
    updated = {name: statement.excluded[name] for name in ("first_seen", "last_seen", "count",
                                                           *Profile.SET_FIELDS)}
    return statement.on_conflict_do_update(index_elements=["kind", "key"], set_=updated)


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]
