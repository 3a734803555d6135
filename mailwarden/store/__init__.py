"""Persistence: SQLite (WAL) in the data dir by default, PostgreSQL with ``MAILWARDEN_DATABASE_URL``.

    Store.open(settings)    connect, migrate to the newest schema; a context manager
    load_profiles(settings) the learned profiles for scanning (empty before the first ``learn``)
"""

from mailwarden.store.store import Store, load_profiles

__all__ = ["Store", "load_profiles"]
