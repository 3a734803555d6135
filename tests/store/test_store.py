"""The store keeps learned profiles on SQLite and PostgreSQL alike (``database_url`` runs tests on both)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select

from mailwarden.config import Settings
from mailwarden.errors import StoreError
from mailwarden.message import Message, parse
from mailwarden.profiles import Profile, Profiles
from mailwarden.store import Store, load_profiles
from mailwarden.store.db import parse_url
from mailwarden.store.migrate import current_revision, head_revision
from mailwarden.store.models import Base, ProfileRow

AUTHSERV_ID = "mx.acme.test"
CEST = timezone(timedelta(hours=2))


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=url)


def mail(sender: str, *, ip: str, dkim: str, to: str, reply_to: str | None = None) -> Message:
    """A small legitimate message as our boundary MTA would have stamped it."""
    lines = [
        f"Authentication-Results: {AUTHSERV_ID}; spf=pass smtp.mailfrom={sender}; dkim=pass header.d={dkim}",
        f"Received: from out.sender.test ([{ip}]) by {AUTHSERV_ID}; Mon, 5 Jan 2026 10:00:00 +0000",
        f"From: Billing Team <{sender}>",
        f"To: {to}",
        *([f"Reply-To: {reply_to}"] if reply_to else []),
        "Subject: Invoice",
        "X-Mailer: Microsoft Outlook 16.0",
        "",
        "Please find the invoice attached.",
    ]
    return parse("\r\n".join(lines).encode(), authserv_id=AUTHSERV_ID)


def full_profile() -> Profile:
    """A profile with every learned set filled, seen in a non-UTC zone, with microseconds."""
    profile = Profile(kind="sender", key="billing@globex.test",
                      first_seen=datetime(2026, 1, 5, 9, 30, 0, 123456, tzinfo=CEST),
                      last_seen=datetime(2026, 3, 1, 17, 0, 0, tzinfo=CEST), count=7)
    profile.merge_sets({
        "display_names": {"globex billing", "müller, jörg"},
        "sending_domains": {"globex.test"},
        "dkim_domains": {"globex.test", "sendgrid.info"},
        "spf_domains": {"bounce.globex.test"},
        "reply_to_domains": {"globex.zendesk.test"},
        "ips": {"81.2.69.142", "2001:db8::25"},
        "mailers": {"microsoft outlook 16.0"},
        "recipients": {"ap@acme.test", "cfo@acme.test"},
    })
    return profile


def test_opening_migrates_an_empty_database_to_the_newest_schema(database_url: str, tmp_path: Path) -> None:
    with Store.open(settings_for(database_url, tmp_path)) as store:
        tables = inspect(store.engine).get_table_names()
        columns = {c["name"] for c in inspect(store.engine).get_columns("profiles")}
        with store.engine.connect() as connection:
            revision = current_revision(connection)
    assert {"profiles", "alembic_version"} <= set(tables)
    assert set(Profile.SET_FIELDS) <= columns
    assert revision == head_revision() is not None


def test_opening_again_keeps_the_schema_and_the_data(database_url: str, tmp_path: Path) -> None:
    settings = settings_for(database_url, tmp_path)
    profiles = Profiles(senders={"billing@globex.test": full_profile()})
    with Store.open(settings) as store:
        store.save_profiles(profiles)
    with Store.open(settings) as store:
        assert store.load_profiles() == profiles


def test_migrations_create_exactly_what_the_models_describe(database_url: str, tmp_path: Path) -> None:
    with Store.open(settings_for(database_url, tmp_path)) as store, store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_profiles_round_trip_with_every_set_and_time(database_url: str, tmp_path: Path) -> None:
    sender = full_profile()
    domain = Profile(kind="domain", key="globex.test", first_seen=sender.first_seen,
                     last_seen=sender.last_seen, count=9, ips={"81.2.69.142"})
    with Store.open(settings_for(database_url, tmp_path)) as store:
        store.save_profiles(Profiles(senders={sender.key: sender}, domains={domain.key: domain}))
        loaded = store.load_profiles()

    assert loaded.senders == {sender.key: sender}
    assert loaded.domains == {domain.key: domain}
    got = loaded.senders[sender.key]
    assert got.first_seen == datetime(2026, 1, 5, 7, 30, 0, 123456, tzinfo=UTC)
    assert got.first_seen.tzinfo is UTC and got.last_seen.tzinfo is UTC


def test_learning_again_adds_counts_and_widens_first_and_last_seen(database_url: str, tmp_path: Path) -> None:
    settings = settings_for(database_url, tmp_path)
    invoice = mail("billing@globex.test", ip="81.2.69.142", dkim="globex.test", to="ap@acme.test")
    with Store.open(settings) as store:
        profiles = store.load_profiles()
        profiles.observe(invoice, datetime(2026, 2, 10, 9, 0, tzinfo=UTC))
        profiles.observe(invoice, datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
        store.save_profiles(profiles)

    older = mail("billing@globex.test", ip="185.12.64.3", dkim="globex.test", to="cfo@acme.test",
                 reply_to="Support <help@globex-support.test>")
    colleague = mail("jo@globex.test", ip="81.2.69.142", dkim="globex.test", to="ap@acme.test")
    with Store.open(settings) as store:
        profiles = store.load_profiles()
        profiles.observe(older, datetime(2026, 1, 2, 8, 0, tzinfo=UTC))
        profiles.observe(colleague, datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
        store.save_profiles(profiles)

    learned = load_profiles(settings)
    billing = learned.senders["billing@globex.test"]
    assert billing.count == 3
    assert billing.first_seen == datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
    assert billing.last_seen == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert billing.ips == {"81.2.69.142", "185.12.64.3"}
    assert billing.recipients == {"ap@acme.test", "cfo@acme.test"}
    assert billing.reply_to_domains == {"globex-support.test"}
    assert billing.dkim_domains == {"globex.test"}
    domain = learned.domains["globex.test"]
    assert (domain.count, domain.first_seen, domain.last_seen) == (
        4, datetime(2026, 1, 2, 8, 0, tzinfo=UTC), datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    assert learned.senders["jo@globex.test"].count == 1


def test_saving_twice_updates_rows_instead_of_adding_them(database_url: str, tmp_path: Path) -> None:
    profiles = Profiles(senders={"billing@globex.test": full_profile()})
    with Store.open(settings_for(database_url, tmp_path)) as store:
        store.save_profiles(profiles)
        profiles.senders["billing@globex.test"].count = 8
        store.save_profiles(profiles)
        with store.engine.connect() as connection:
            rows = connection.execute(select(func.count()).select_from(ProfileRow)).scalar_one()
        assert rows == 1
        assert store.load_profiles().senders["billing@globex.test"].count == 8


def test_thousands_of_profiles_save_and_load_in_bulk(database_url: str, tmp_path: Path) -> None:
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    senders = [Profile(kind="sender", key=f"user{i}@partner{i % 97}.test", first_seen=seen, last_seen=seen,
                       count=i, ips={f"81.2.69.{i % 250}"}) for i in range(2500)]
    profiles = Profiles(senders={p.key: p for p in senders})
    with Store.open(settings_for(database_url, tmp_path)) as store:
        store.save_profiles(profiles)
        assert store.load_profiles() == profiles


def test_a_time_without_timezone_is_refused(database_url: str, tmp_path: Path) -> None:
    naive = Profile(kind="sender", key="a@b.test", first_seen=datetime(2026, 1, 1),
                    last_seen=datetime(2026, 1, 1))
    with Store.open(settings_for(database_url, tmp_path)) as store, pytest.raises(StoreError, match="naive"):
        store.save_profiles(Profiles(senders={naive.key: naive}))


def test_scanning_before_learning_creates_nothing(sqlite_url: str, tmp_path: Path) -> None:
    settings = settings_for(sqlite_url, tmp_path)
    assert len(load_profiles(settings)) == 0
    assert not settings.data_dir.exists()


def test_sqlite_runs_in_wal_mode_with_normal_sync_and_foreign_keys(sqlite_url: str, tmp_path: Path) -> None:
    with Store.open(settings_for(sqlite_url, tmp_path)) as store, store.engine.connect() as connection:
        pragmas = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                   for name in ("journal_mode", "synchronous", "foreign_keys")}
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1}
    with closing(sqlite3.connect(tmp_path / "data" / "mailwarden.db")) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # persisted in the file


def test_sqlite_readers_do_not_wait_for_a_writer(sqlite_url: str, tmp_path: Path) -> None:
    settings = settings_for(sqlite_url, tmp_path)
    profiles = Profiles(senders={"billing@globex.test": full_profile()})
    with Store.open(settings) as writer:
        writer.save_profiles(profiles)
        with writer.engine.begin() as connection:
            connection.execute(delete(ProfileRow))
            assert load_profiles(settings) == profiles  # the committed state, at once


@pytest.mark.parametrize("url", [
    "not a database url",
    "mysql://root@127.0.0.1/test",
    "postgresql://root:s3cret@127.0.0.1:1/test",  # nothing listens on port 1
])
def test_a_bad_database_url_is_a_store_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        Store.open(settings_for(url, tmp_path))
    assert "s3cret" not in str(caught.value)


def test_a_data_dir_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("a file, not a directory")
    url = f"sqlite:///{tmp_path / 'occupied' / 'data' / 'mailwarden.db'}"
    with pytest.raises(StoreError, match="data directory"):
        Store.open(settings_for(url, tmp_path))


@pytest.mark.parametrize("url", ["postgresql://u@db.test/mw", "postgres://u@db.test/mw",
                                 "postgresql+psycopg://u@db.test/mw"])
def test_postgresql_urls_always_use_psycopg_3(url: str) -> None:
    assert parse_url(url).drivername == "postgresql+psycopg"
