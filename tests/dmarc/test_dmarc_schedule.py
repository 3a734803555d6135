"""The scheduled posture check: own and partner domains checked against a real DNS server (Knot on
loopback), what changed stored as events, partners with weak DMARC flagged, and their contacts told once
through a real SMTP server (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dnsserver import KnotServer
from gwharness import Recorder
from posturezones import posture_zones
from sqlalchemy import Engine, select

from mailwarden.config import NotifySettings, OrgConfig, Partner
from mailwarden.dmarc.alerts import table
from mailwarden.dmarc.notice import NOTICE_EVENT, render_notice
from mailwarden.dmarc.schedule import (
    PARTNER_EVENT,
    POSTURE_EVENT,
    RUN_EVENT,
    PostureSchedule,
    check_and_record,
    latest_postures,
)
from mailwarden.dmarc.settings import ServeSettings, default_settings
from mailwarden.dns import LiveResolver
from mailwarden.gateway.server import open_engine

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CONTACTS = ("billing@partner.posture.test", "it@partner.posture.test")


def org(relay: str = "", notify: bool = False) -> OrgConfig:
    dmarc = replace(default_settings(), serve=ServeSettings(posture_interval=3600.0, notify_partners=notify))
    return OrgConfig(name="Acme <Corp>\u202e", domains=("strong.posture.test",), dmarc=dmarc,
                     partners=(Partner("Partner Ltd", ("partner.posture.test",), CONTACTS),
                               Partner("Weak & Co", ("weak.posture.test",)),
                               Partner("Strong Inc", ("parked.posture.test",), ("ops@parked.posture.test",))),
                     notify=NotifySettings(relay=relay, from_="security@strong.posture.test"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def resolver(posture_dns: str) -> Iterator[LiveResolver]:
    with LiveResolver(posture_dns, timeout=1.0) as live:
        yield live


def events(engine: Engine, kind: str) -> list[dict[str, Any]]:
    events_table = table("events")
    with engine.connect() as connection:
        return [row.payload for row in connection.execute(select(events_table).where(events_table.c.type == kind)
                                                          .order_by(events_table.c.id))]


def run(engine: Engine, config: OrgConfig, resolver: LiveResolver, when: datetime = NOW, **options: Any) -> Any:
    return asyncio.run(check_and_record(engine, config, resolver, now=lambda: when, **options))


def test_a_run_stores_each_posture_and_flags_weak_partners(engine: Engine, resolver: LiveResolver) -> None:
    first = run(engine, org(), resolver)
    assert len(first.checked) == 4
    assert sorted(first.changed) == ["parked.posture.test", "partner.posture.test", "strong.posture.test",
                                     "weak.posture.test"]
    assert sorted(first.flagged) == ["partner.posture.test", "weak.posture.test"]
    partners = {e["domain"]: e for e in events(engine, PARTNER_EVENT)}
    assert set(partners) == {"partner.posture.test", "weak.posture.test"}  # parked publishes p=reject
    assert (partners["partner.posture.test"]["flag"], partners["partner.posture.test"]["strength"]) == (
        "no_dmarc", "missing")
    assert (partners["weak.posture.test"]["flag"], partners["weak.posture.test"]["partner"]) == (
        "weak_dmarc", "Weak & Co")
    assert partners["weak.posture.test"]["previous_strength"] is None
    stored = latest_postures(engine)
    assert stored["strong.posture.test"]["role"] == "own" and stored["strong.posture.test"]["changes"] == [
        "first check"]
    assert stored["strong.posture.test"]["posture"]["dmarc"]["strength"] == "reject"
    assert stored["weak.posture.test"]["checked_at"].startswith("2026-03-02T12:00:00")

    second = run(engine, org(), resolver, NOW + timedelta(hours=1))
    assert second.changed == [] and sorted(second.flagged) == ["partner.posture.test", "weak.posture.test"]
    assert len(events(engine, POSTURE_EVENT)) == 4 and len(events(engine, PARTNER_EVENT)) == 2
    assert [e["checked"] for e in events(engine, RUN_EVENT)] == [4, 4]


def test_a_partner_that_changes_its_dmarc_raises_an_event(engine: Engine, resolver: LiveResolver,
                                                          tmp_path: Path) -> None:
    run(engine, org(), resolver)
    zones = posture_zones()
    zones["posture.test"].append(("_dmarc.partner.posture.test", 300, "TXT", "v=DMARC1; p=none"))
    zones["posture.test"] = [r for r in zones["posture.test"] if r[0] != "_dmarc.parked.posture.test"]
    with KnotServer(tmp_path / "knot-later", zones) as later, LiveResolver(later.address, timeout=1.0) as changed:
        result = run(engine, org(), changed, NOW + timedelta(days=1))
    assert sorted(result.changed) == ["parked.posture.test", "partner.posture.test"]
    partner_events = events(engine, PARTNER_EVENT)
    assert len(partner_events) == 4
    by_domain = {e["domain"]: e for e in partner_events[2:]}
    assert (by_domain["partner.posture.test"]["flag"], by_domain["partner.posture.test"]["strength"],
            by_domain["partner.posture.test"]["previous_strength"]) == ("weak_dmarc", "monitoring", "missing")
    assert (by_domain["parked.posture.test"]["previous_strength"], by_domain["parked.posture.test"]["strength"]) == (
        "reject", "missing")
    stored = latest_postures(engine, ["partner.posture.test"])["partner.posture.test"]
    assert "strength: missing -> monitoring" in stored["changes"]
    assert "partner_flag: no_dmarc -> weak_dmarc" in stored["changes"]


def test_a_failed_dmarc_lookup_is_no_change(engine: Engine, resolver: LiveResolver, tmp_path: Path) -> None:
    run(engine, org(), resolver)
    with LiveResolver("127.0.0.1:9", timeout=0.2) as dead:  # nothing answers there
        result = run(engine, org(), dead, NOW + timedelta(days=1))
    assert result.changed == [] and len(result.unknown) == 4
    assert len(events(engine, POSTURE_EVENT)) == 4


def test_partner_contacts_are_told_once_per_state(engine: Engine, resolver: LiveResolver, downstream: Recorder,
                                                   downstream_port: int, tmp_path: Path) -> None:
    config = org(relay=f"127.0.0.1:{downstream_port}", notify=True)
    first = run(engine, config, resolver)
    assert sorted((n.recipient, n.state) for n in first.notices) == [(c, "sent") for c in CONTACTS]
    delivered = downstream.wait_for(2)
    assert sorted(r for m in delivered for r in m.recipients) == sorted(CONTACTS)
    assert {m.mail_from for m in delivered} == {"security@strong.posture.test"}
    message = email.message_from_bytes(delivered[0].data, policy=email.policy.default)
    assert message["Auto-Submitted"] == "auto-generated"
    assert "partner.posture.test" in message["Subject"] and "missing" in message["Subject"]
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Partner Ltd" in text and "no DMARC record" in text and "What to change" in text
    assert "\u202e" not in str(message["From"]) + text  # formatting characters from the config are cleaned
    assert run(engine, config, resolver, NOW + timedelta(hours=1)).notices == []  # told already
    assert len(events(engine, NOTICE_EVENT)) == 2

    zones = posture_zones()
    zones["posture.test"].append(("_dmarc.partner.posture.test", 300, "TXT", "v=DMARC1; p=none"))
    with KnotServer(tmp_path / "knot-later", zones) as later, LiveResolver(later.address, timeout=1.0) as changed:
        again = run(engine, config, changed, NOW + timedelta(days=1))
    assert sorted((n.recipient, n.state_told) for n in again.notices) == [(c, "weak_dmarc:monitoring")
                                                                          for c in CONTACTS]
    downstream.wait_for(4)


def test_a_relay_that_refuses_is_tried_again_next_time(engine: Engine, resolver: LiveResolver, downstream: Recorder,
                                                       downstream_port: int) -> None:
    config = org(relay=f"127.0.0.1:{downstream_port}", notify=True)
    downstream.fail_data.extend(["451 4.3.0 try later"] * 2)
    first = run(engine, config, resolver)
    assert {n.state for n in first.notices} == {"failed"} and "451" in first.notices[0].error
    second = run(engine, config, resolver, NOW + timedelta(hours=1))
    assert sorted((n.recipient, n.state) for n in second.notices) == [(c, "sent") for c in CONTACTS]


def test_the_notice_is_plain_text_with_the_findings(resolver: LiveResolver) -> None:
    from mailwarden.dmarc.posture import check_domains

    [posture] = check_domains(resolver, ["weak.posture.test"], {"weak.posture.test": "partner"},
                              default_settings().posture)
    message = render_notice(org(), posture, "Weak & Co", "it@weak.posture.test", NOW)
    assert message.get_content_type() == "text/plain"
    text = message.get_content()
    assert "p=none (monitoring only)" in message["Subject"]
    assert "'+all'" in text and "2026-03-02 12:00 UTC" in text
    with pytest.raises(ValueError):
        render_notice(org(), posture, "Weak & Co", "it@weak.posture.test\r\nBcc: x@evil.test", NOW)


def test_the_schedule_runs_when_due_and_shares_the_last_run(engine: Engine, resolver: LiveResolver) -> None:
    clock = [NOW]
    config = org()
    schedule = PostureSchedule(engine, config, resolver, now=lambda: clock[0])
    assert schedule.seconds_until_due() == 0.0
    run(engine, config, resolver)
    assert schedule.seconds_until_due() == 3600.0  # another node ran it just now
    clock[0] = NOW + timedelta(minutes=45)
    assert schedule.seconds_until_due() == 900.0

    async def briefly() -> None:
        stopping = asyncio.Event()
        task = asyncio.create_task(schedule.run(stopping))
        await asyncio.sleep(0.2)
        stopping.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(briefly())
    assert schedule.runs == 0  # not due, and the first run waits for start-up anyway
