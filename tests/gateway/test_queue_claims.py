"""Queue claims: concurrent workers (their own connections) never get the same entry; a dead worker's
entries come back when its lease runs out, or at once when it restarts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from mailwarden.gateway.queue import claim, enqueue, release_claims
from mailwarden.gateway.server import open_engine

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _fill(database_url: str, count: int) -> None:
    engine = open_engine(database_url)
    try:
        with engine.begin() as connection:
            for n in range(count):
                enqueue(connection, ref=f"{n:04x}", kind="message", mail_from="a@b.test", recipients=["c@d.test"],
                        destination="127.0.0.1:25", now=NOW, expire_after=3600)
    finally:
        engine.dispose()


def test_concurrent_workers_claim_disjoint_entries(database_url: str) -> None:
    _fill(database_url, 300)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        engine = open_engine(database_url)
        mine: list[int] = []
        try:
            while True:
                batch = claim(engine, name, 7, lease=300, now=NOW)
                if not batch:
                    break
                mine += [entry.id for entry in batch]
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()
            claimed[name] = mine

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    every = [entry for ids in claimed.values() for entry in ids]
    assert len(every) == 300 and len(set(every)) == 300


def test_a_dead_workers_entries_return_after_the_lease_or_at_its_restart(database_url: str) -> None:
    _fill(database_url, 4)
    engine = open_engine(database_url)
    try:
        assert len(claim(engine, "dead", 2, lease=60, now=NOW)) == 2
        assert len(claim(engine, "other", 10, lease=60, now=NOW)) == 2  # only the two unclaimed
        assert claim(engine, "other", 10, lease=60, now=NOW + timedelta(seconds=30)) == []
        again = claim(engine, "other", 10, lease=60, now=NOW + timedelta(seconds=61))
        assert len(again) == 4  # every lease ran out
        assert release_claims(engine, "other", NOW) == 4
        assert len(claim(engine, "x", 10, lease=60, now=NOW)) == 4
    finally:
        engine.dispose()
