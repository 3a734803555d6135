"""The indicator store on SQLite and PostgreSQL: assert and learn, sightings, revocation, the audit log, STIX
versions, the list version the gateway reloads on, lookalikes and verdicts learned, the migration from the watch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from intelharness import ORG
from sqlalchemy import Engine, insert, select

from mailwarden.gateway.server import open_engine
from mailwarden.intel import learn, stix, store
from mailwarden.intel.allowlist import AllowList
from mailwarden.intel.store import NewIndicator, Sighting
from mailwarden.message import parse
from mailwarden.pipeline import Context, Indicator, scan
from mailwarden.store.models import Base

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ALLOW = AllowList.for_org(ORG)


@pytest.fixture
def engine(database_url: str) -> Engine:
    found = open_engine(database_url)
    yield found  # type: ignore[misc]
    found.dispose()


def _record(engine: Engine, item: NewIndicator, when: datetime = T0, mode: str = "assert",
            sighting: Sighting | None = None) -> store.Change:
    with engine.begin() as connection:
        return store.record(connection, item, now=when, actor="test", mode=mode, allow=ALLOW, sighting=sighting,
                            producer="Acme Corp")


def _events(engine: Engine) -> list[str]:
    events = Base.metadata.tables["events"]
    with engine.connect() as connection:
        return [r.type for r in connection.execute(select(events).order_by(events.c.id))]


def test_asserting_creates_then_replaces_and_audits(engine: Engine) -> None:
    created = _record(engine, NewIndicator("domain", "Evil.Example", confidence=90, action="block",
                                           tags=("campaign:invoice",)))
    assert created.created and created.indicator is not None
    indicator = created.indicator
    assert indicator["value"] == "evil.example" and indicator["severity"] == "critical" and indicator["active"]
    again = _record(engine, NewIndicator("domain", "evil.example", confidence=40, action="monitor", tags=("x",)),
                    T0 + timedelta(hours=1))
    assert not again.created and again.changes["confidence"] == 40 and again.changes["action"] == "monitor"
    assert again.indicator is not None and again.indicator["tags"] == ["campaign:invoice", "x"]
    log = store.audit_log(engine).items
    assert [entry["action"] for entry in log] == ["update", "create"]
    assert log[0]["detail"]["before"]["confidence"] == 90 and log[0]["actor"] == "test"
    assert _events(engine) == ["indicator.upserted", "indicator.upserted"]


def test_learning_only_raises_confidence_and_keeps_blocks_and_revocations(engine: Engine) -> None:
    first = _record(engine, NewIndicator("url", "http://evil.example/pay", confidence=80, action="block"))
    assert first.indicator is not None
    learned = _record(engine, NewIndicator("url", "http://evil.example/pay", confidence=30), T0 + timedelta(hours=1),
                      mode="learn", sighting=Sighting("ref1", "<m1@x>", verdict="quarantine"))
    assert learned.indicator is not None and learned.indicator["confidence"] == 80
    assert learned.indicator["action"] == "block" and learned.sighted and learned.indicator["sightings"] == 1
    with engine.begin() as connection:
        store.revoke(connection, first.indicator["id"], now=T0 + timedelta(hours=2), actor="analyst",
                     reason="false positive")
    again = _record(engine, NewIndicator("url", "http://evil.example/pay", confidence=99), T0 + timedelta(hours=3),
                    mode="learn", sighting=Sighting("ref2"))
    assert again.indicator is not None and again.indicator["revoked"] and not again.indicator["active"]
    assert again.indicator["sightings"] == 2  # still sighted, never revived by a detector
    assert [s["message_ref"] for s in store.sightings_of(engine, first.indicator["id"]).items] == ["ref2", "ref1"]
    revived = _record(engine, NewIndicator("url", "http://evil.example/pay", confidence=70), T0 + timedelta(hours=4))
    assert revived.indicator is not None and revived.indicator["active"]  # a person or client may revive it


def test_allow_listed_and_invalid_values_are_refused(engine: Engine) -> None:
    assert "allow-listed" in _record(engine, NewIndicator("domain", "acme.test")).refused
    assert "allow-listed" in _record(engine, NewIndicator("url", "https://www.google.com/")).refused
    assert "not a domain" in _record(engine, NewIndicator("domain", "not a domain")).refused
    assert "confidence" in _record(engine, NewIndicator("domain", "evil.example", confidence=101)).refused
    assert store.search(engine).items == []


def test_each_change_is_a_new_stix_version_with_identities_and_relationships(engine: Engine) -> None:
    made = _record(engine, NewIndicator("domain", "globex-logistlcs.test", confidence=85,
                                        tags=("lookalike-of:globex-logistics.test", "partner:Globex Logistics")))
    assert made.indicator is not None
    _record(engine, NewIndicator("domain", "globex-logistlcs.test", confidence=95), T0 + timedelta(minutes=1))
    with engine.connect() as connection:
        rows = list(connection.execute(select(stix.OBJECTS).order_by(stix.OBJECTS.c.id)))
    kinds = [r.type for r in rows]
    assert kinds.count("indicator") == 2 and "relationship" in kinds and kinds.count("identity") == 2
    versions = [r.object["modified"] for r in rows if r.type == "indicator"]
    assert versions[0] < versions[1]
    [relationship] = [r.object for r in rows if r.type == "relationship"]
    partner = next(r.object for r in rows if r.type == "identity" and r.object["name"] == "Globex Logistics")
    assert relationship["relationship_type"] == "lookalike-of" and relationship["target_ref"] == partner["id"]
    assert relationship["source_ref"] == made.indicator["stix_id"]


def test_the_list_version_moves_only_for_blocking_changes(engine: Engine) -> None:
    with engine.connect() as connection:
        start = store.lists_version(connection)
    _record(engine, NewIndicator("domain", "monitored.example", confidence=50))
    with engine.connect() as connection:
        assert store.lists_version(connection) == start
    blocked = _record(engine, NewIndicator("domain", "blocked.example", confidence=90, action="block"))
    assert blocked.indicator is not None
    with engine.connect() as connection:
        assert store.lists_version(connection) == start + 1
    lists = store.load_lists(engine, ALLOW, T0)
    assert lists.blocked_domains == {"blocked.example"} and lists.version == start + 1
    assert lists.expires_at == datetime.fromisoformat(blocked.indicator["valid_until"])
    with engine.begin() as connection:
        store.revoke(connection, blocked.indicator["id"], now=T0, actor="t")
        assert store.lists_version(connection) == start + 2
    assert store.load_lists(engine, ALLOW, T0).blocked_domains == set()


def test_expired_indicators_block_nothing_and_are_not_active(engine: Engine) -> None:
    _record(engine, NewIndicator("email-addr", "ceo@evil.example", action="block", valid_until=T0 + timedelta(days=1)))
    assert store.load_lists(engine, ALLOW, T0).blocked_senders == {"ceo@evil.example"}
    later = T0 + timedelta(days=2)
    assert store.load_lists(engine, ALLOW, later).blocked_senders == set()
    assert store.search(engine, store.Filters(active=True), now=later).items == []
    assert len(store.search(engine, store.Filters(active=False), now=later).items) == 1


def test_search_filters_and_pages(engine: Engine) -> None:
    for i in range(7):
        _record(engine, NewIndicator("domain", f"bad{i}.example", confidence=10 * i,
                                     tags=("even",) if i % 2 == 0 else ()))
    _record(engine, NewIndicator("ipv4", "203.0.113.9", source="feed:isac"))
    first = store.search(engine, store.Filters(type="domain"), limit=3)
    second = store.search(engine, store.Filters(type="domain"), limit=3, cursor=first.next_cursor)
    third = store.search(engine, store.Filters(type="domain"), limit=3, cursor=second.next_cursor)
    values = [i["value"] for i in first.items + second.items + third.items]
    assert values == [f"bad{i}.example" for i in range(6, -1, -1)] and third.next_cursor is None
    assert [i["value"] for i in store.search(engine, store.Filters(tag="even")).items] == [
        "bad6.example", "bad4.example", "bad2.example", "bad0.example"]
    assert [i["value"] for i in store.search(engine, store.Filters(min_confidence=50, contains="bad")).items] == [
        "bad6.example", "bad5.example"]
    assert [i["value"] for i in store.search(engine, store.Filters(source="feed:isac")).items] == ["203.0.113.9"]
    assert store.search(engine, store.Filters(type="domain", value="BAD3.example.")).items[0]["value"] == "bad3.example"


RAW = (b"From: Billing <billing@globex-logistlcs.test>\r\nTo: bob@acme.test\r\nSubject: New bank details\r\n"
       b"Message-ID: <v1@x>\r\nContent-Type: text/html\r\n\r\n"
       b'<p>Our bank details changed. Pay via <a href="http://pay.evil.example/inv?id=7">the portal</a>.'
       b' Logo: <img src="https://www.google.com/logo.png"></p>\r\n')


def test_a_verdict_teaches_its_indicators_with_sightings_and_the_allow_list(engine: Engine) -> None:
    message = parse(RAW)
    context = Context(org=ORG)
    result = scan(message, context)
    indicators = (*result.indicators, Indicator("url", "https://www.google.com/", "href"),
                  Indicator("domain", "google.com", "href"))
    with engine.begin() as connection:
        changes = learn.learn_from_verdict(connection, indicators, org=ORG, message_ref="r1", message_id="<v1@x>",
                                           verdict="quarantine", score=75, now=T0, result=result)
    learned = {c.indicator["type"] + " " + c.indicator["value"]: c.indicator for c in changes if c.indicator}
    assert "email-addr billing@globex-logistlcs.test" in learned
    assert "url http://pay.evil.example/inv?id=7" in learned and "domain evil.example" in learned
    assert not any("google.com" in key for key in learned)
    for indicator in learned.values():
        assert indicator["action"] == "monitor" and indicator["sightings"] == 1
        assert "verdict:quarantine" in indicator["tags"] and indicator["source"] == "gateway"
    assert learned["domain evil.example"]["confidence"] == 70
    assert learned["email-addr billing@globex-logistlcs.test"]["confidence"] == 75


def test_the_lookalike_watch_records_into_the_store(engine: Engine) -> None:
    with engine.begin() as connection:
        made = learn.record_lookalike(connection, domain="globex-logistlcs.test",
                                      lookalike_of="globex-logistics.test", technique="homoglyph", confidence=88,
                                      source="lookalike-watch", kind="partner", now=T0, mail_enabled=True,
                                      partner="Globex Logistics")
    assert made.indicator is not None
    assert set(made.indicator["tags"]) == {"lookalike-of:globex-logistics.test", "technique:homoglyph", "mx",
                                           "partner:Globex Logistics"}
    assert made.indicator["source"] == "lookalike-watch" and made.indicator["action"] == "monitor"


def test_migration_copies_the_watch_indicators(sqlite_url: str, tmp_path: Path) -> None:
    from alembic import command

    from mailwarden.store.migrate import alembic_config

    engine = open_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0006")
            old = Base.metadata.tables["lookalike_indicators"]
            connection.execute(insert(old).values(type="domain", value="acrne.test", confidence=77,
                                                  source="lookalike-watch", tags=["lookalike-of:acme.test"],
                                                  first_seen=T0, last_seen=T0, sightings=3))
            command.upgrade(alembic_config(connection), "head")
        [row] = store.search(engine).items
        assert row["value"] == "acrne.test" and row["confidence"] == 77 and row["source"] == "lookalike-watch"
        assert "lookalike-of:acme.test" in row["tags"]
    finally:
        engine.dispose()


def test_the_watch_writes_its_findings_into_the_store(engine: Engine) -> None:
    from mailwarden.domains.watch import REGISTERED, Candidate, Observation, save_observations

    candidate = Candidate("acrne.test", "acme.test", "homoglyph", 91, "own", "test")
    save_observations(engine, [(candidate, Observation("acrne.test", REGISTERED, {"MX": ("mx.acrne.test.",)}))], T0)
    found = store.find(engine, "domain", "acrne.test")
    assert found is not None and found["source"] == "lookalike-watch" and found["confidence"] == 91
    assert {"lookalike-of:acme.test", "technique:homoglyph", "own-domain", "mx"} <= set(found["tags"])
