"""The Store: one database per data dir, opened and migrated once, with the profiles learned from mail.

Loading and saving work on whole ``Profiles`` at once with Core statements (one ``SELECT``, batched
upserts), because ``learn`` rewrites thousands of profiles and the scanner loads them all at start-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, Insert, Row, Table, select, text
from sqlalchemy.dialects import postgresql, sqlite

from mailwarden.config import Settings
from mailwarden.profiles import Profile, Profiles
from mailwarden.store.db import begin_write, make_engine, parse_url, sqlite_file, store_errors
from mailwarden.store.migrate import upgrade
from mailwarden.store.models import Base, ProfileRow

SAVE_BATCH = 1000  # rows per executemany: bounds memory per statement, keeps round trips few
PROFILES: Table = Base.metadata.tables[ProfileRow.__tablename__]
PG_PROFILE_MERGE_LOCK = 0x6D77_7072_6F66  # "mwprof": the advisory lock processes merging learned profiles share


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
        with store_errors("save profiles to", self.engine.url), begin_write(self.engine) as connection:
            statement = _upsert(connection)
            for batch in _batches(rows, SAVE_BATCH):
                connection.execute(statement, batch)

    def merge_profiles(self, learned: Profiles) -> Profiles:
        """Add newly learned profiles to the stored ones and return the merged profiles of the keys touched.

        Counts are added, sets united (within their caps), first and last seen widened, in one transaction
        that processes take in turn (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two
        gateways learning at once lose nothing. The gateway calls this with a batch of delivered messages."""
        merged = Profiles()
        learned_items = [*learned.senders.values(), *learned.domains.values()]
        if not learned_items:
            return merged
        with store_errors("merge profiles into", self.engine.url), begin_write(self.engine) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_PROFILE_MERGE_LOCK})
            stored: dict[tuple[str, str], Profile] = {}
            for kind, table in (("sender", learned.senders), ("domain", learned.domains)):
                keys = list(table)
                for start in range(0, len(keys), SAVE_BATCH):
                    chunk = keys[start:start + SAVE_BATCH]
                    for row in connection.execute(select(PROFILES).where(PROFILES.c.kind == kind,
                                                                         PROFILES.c.key.in_(chunk))):
                        found = _profile_from_row(row)
                        stored[(kind, found.key)] = found
            rows = []
            for new in learned_items:
                combined = _combined(stored.get((new.kind, new.key)), new)
                (merged.senders if new.kind == "sender" else merged.domains)[new.key] = combined
                rows.append(_row_from_profile(combined))
            statement = _upsert(connection)
            for batch in _batches(rows, SAVE_BATCH):
                connection.execute(statement, batch)
        return merged

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


def _combined(stored: Profile | None, learned: Profile) -> Profile:
    """A new profile: what was stored plus what was learned since."""
    if stored is None:
        combined = Profile(kind=learned.kind, key=learned.key, first_seen=learned.first_seen,
                           last_seen=learned.last_seen, count=learned.count)
    else:
        combined = Profile(kind=stored.kind, key=stored.key, first_seen=min(stored.first_seen, learned.first_seen),
                           last_seen=max(stored.last_seen, learned.last_seen), count=stored.count + learned.count,
                           **{name: set(getattr(stored, name)) for name in Profile.SET_FIELDS})
    combined.merge_sets({name: sorted(getattr(learned, name)) for name in Profile.SET_FIELDS})
    return combined

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
