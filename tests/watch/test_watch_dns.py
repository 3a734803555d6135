"""The lookalike watch against a real DNS server (Knot on loopback): registered and unregistered lookalikes,
a wildcard zone, SERVFAIL, timeouts and a failed wildcard check, state across runs, events and indicators."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from watchharness import IDN_LOOKALIKE, REGISTERED, ProbeDropper

from mailwarden.config import load_org
from mailwarden.dns import LiveResolver
from mailwarden.domains.watch import WatchReport, run_watch, stored_lookalikes
from mailwarden.store import Store
from mailwarden.store.models import Base

EVENTS = Base.metadata.tables["events"]
INDICATORS = Base.metadata.tables["lookalike_indicators"]


def watch(store: Store, config: Path, server: str, timeout: float = 1.0, **options: object) -> WatchReport:
    with LiveResolver(server, timeout=timeout) as resolver:
        return asyncio.run(run_watch(store.engine, load_org(config), resolver, notify=False, **options))  # type: ignore[arg-type]


def rows_by_domain(store: Store) -> dict[str, dict[str, object]]:
    return {row["domain"]: row for row in stored_lookalikes(store.engine)}


def test_registered_lookalikes_are_found_and_told_apart_from_the_rest(
        store: Store, org_toml: Callable[[str], Path], watch_dns: str) -> None:
    config = org_toml("")
    report = watch(store, config, watch_dns)
    new = {f.domain: f for f in report.new}
    assert set(new) == set(REGISTERED)
    for domain, (imitated, mx) in REGISTERED.items():
        finding = new[domain]
        assert finding.change == "registered"
        assert finding.candidate.lookalike_of == imitated
        assert finding.observation.has("MX") is mx
        assert finding.observation.has("NS") and finding.observation.has("A")
    assert new["marlowfenvvick.co.uk"].candidate.technique == "homoglyph"
    assert new[IDN_LOOKALIKE].candidate.technique == "homoglyph"
    assert new["marlowfenwick.com"].observation.has("AAAA")
    assert [dict(d) for d in new["marlowfenvvick.co.uk"].observation.dnsbl] == [
        {"zone": "dbl.test", "codes": ["127.0.1.2"], "meanings": ["listed"]}]
    assert not new["marlowfenwick.com"].observation.dnsbl
    # registered under a wildcard zone: its own records, not the synthesis
    assert new["marlowfenwick.cm"].observation.records["A"] == ("198.51.100.5",)

    rows = rows_by_domain(store)
    assert rows["marlowfenwik.co.uk"]["status"] == "unregistered"  # NXDOMAIN
    assert rows["mfinstruments.cm"]["status"] == "wildcard"  # only the *.cm answers
    assert rows["castlegatepolymers.cm"]["status"] == "wildcard"
    assert rows["marlowfenwick.net"]["status"] == "unknown"  # SERVFAIL
    assert "SERVFAIL" in str(rows["marlowfenwick.net"]["detail"])
    assert "castlegate-polymers.com" not in rows  # the partner's other domain is no lookalike
    assert all(r["first_seen"] is None for r in rows.values() if r["status"] != "registered")
    assert report.statuses["registered"] == len(REGISTERED)
    assert report.checked == report.candidates > 1000

    with store.engine.connect() as connection:
        events = list(connection.execute(select(EVENTS).where(EVENTS.c.type == "lookalike.found")))
        indicators = {r.value: r for r in connection.execute(select(INDICATORS))}
    assert sorted(e.payload["domain"] for e in events) == sorted(REGISTERED)
    assert {e.payload["source"] for e in events} == {"lookalike-watch"}
    assert set(indicators) == set(REGISTERED)
    marlow = indicators["marlowfenvvick.co.uk"]
    assert marlow.source == "lookalike-watch" and marlow.type == "domain" and marlow.confidence == 90
    assert "lookalike-of:marlowfenwick.co.uk" in marlow.tags and "mx" in marlow.tags and "dnsbl" in marlow.tags

    again = watch(store, config, watch_dns)
    assert again.new == []
    with store.engine.connect() as connection:
        assert len(list(connection.execute(select(EVENTS).where(EVENTS.c.type == "lookalike.found")))) == len(events)
        assert connection.execute(select(INDICATORS.c.sightings).where(
            INDICATORS.c.value == "marlowfenvvick.co.uk")).scalar_one() == 2
    first = rows["marlowfenvvick.co.uk"]
    later = rows_by_domain(store)["marlowfenvvick.co.uk"]
    assert later["first_seen"] == first["first_seen"] and later["last_seen"] > first["last_seen"]  # type: ignore[operator]


def test_a_later_day_reports_only_what_changed(sqlite_store: Store, org_toml: Callable[[str], Path], watch_dns: str,
                                               later_dns: str) -> None:
    config = org_toml("")
    watch(sqlite_store, config, watch_dns)
    report = watch(sqlite_store, config, later_dns)
    assert {f.domain: f.change for f in report.new} == {"marlowfenwik.co.uk": "registered",
                                                        "marlowfenwlck.co.uk": "mail_enabled"}
    rows = rows_by_domain(sqlite_store)
    assert rows["marlowfenwik.co.uk"]["status"] == "registered" and rows["marlowfenwlck.co.uk"]["mx"] is True


def test_timeouts_are_unknown_never_registered_and_looked_up_again(
        sqlite_store: Store, org_toml: Callable[[str], Path], blackhole: str, watch_dns: str) -> None:
    config = org_toml("")
    report = watch(sqlite_store, config, blackhole, timeout=0.3, max_queries=20, concurrency=5)
    assert report.new == [] and report.queries == 20
    assert report.skipped > 1000  # the rest waits for the next run
    unknown = stored_lookalikes(sqlite_store.engine)
    assert len(unknown) == 5 and {r["status"] for r in unknown} == {"unknown"}
    assert all("TIMEOUT" in r["detail"] for r in unknown)
    assert all(r["first_seen"] is None and not r["mx"] for r in unknown)

    report = watch(sqlite_store, config, watch_dns)
    assert {f.domain for f in report.new} == set(REGISTERED)
    retried = rows_by_domain(sqlite_store)
    assert all(retried[r["domain"]]["status"] != "unknown" or "SERVFAIL" in str(retried[r["domain"]]["detail"])
               for r in unknown)


def test_a_failed_wildcard_check_is_never_a_registration(
        sqlite_store: Store, org_toml: Callable[[str], Path], probe_dropper: ProbeDropper) -> None:
    report = watch(sqlite_store, org_toml(""), probe_dropper.address, timeout=0.5)
    assert report.new == []
    assert probe_dropper.dropped > 0
    rows = rows_by_domain(sqlite_store)
    for domain in REGISTERED:
        assert rows[domain]["status"] == "unknown", domain
        assert "wildcard check" in str(rows[domain]["detail"])
    assert rows["marlowfenwik.co.uk"]["status"] == "unregistered"  # NXDOMAIN needs no wildcard check


def test_queries_are_rate_limited_and_capped(sqlite_store: Store, org_toml: Callable[[str], Path],
                                             watch_dns: str) -> None:
    started = time.monotonic()
    report = watch(sqlite_store, org_toml(""), watch_dns, max_queries=100, rate=200)
    elapsed = time.monotonic() - started
    assert report.queries == 100
    assert 0 < report.checked < report.candidates
    assert elapsed >= (100 - 20) / 200 * 0.9  # a burst of rate/10, then 200 a second


def test_stored_protected_domains_are_watched_too(sqlite_store: Store, org_toml: Callable[[str], Path],
                                                  watch_dns: str) -> None:
    from mailwarden.domains.discovery import as_protected

    config = org_toml("")
    with LiveResolver(watch_dns, timeout=1.0) as resolver:
        report = asyncio.run(run_watch(sqlite_store.engine, load_org(config), resolver, notify=False,
                                       extra=as_protected(["bramwellfreight.com"])))
    rows = rows_by_domain(sqlite_store)
    assert rows["bramwelfreight.com"]["protected_domain"] == "bramwellfreight.com"
    assert rows["bramwelfreight.com"]["kind"] == "partner"
    assert report.candidates > 0


def test_serve_can_run_the_watch_on_a_schedule(sqlite_store: Store, org_toml: Callable[[str], Path],
                                               watch_dns: str) -> None:
    from dataclasses import replace

    from mailwarden.domains.watch import watch_periodically

    org = load_org(org_toml(""))
    org = replace(org, partners=(), domains=("marlowfenwick.co.uk",), watch=replace(org.watch, interval=0.05))
    reports: list[WatchReport] = []

    async def main() -> None:
        stop = asyncio.Event()

        def keep(report: WatchReport) -> None:
            reports.append(report)
            if len(reports) == 2:
                stop.set()

        with LiveResolver(watch_dns, timeout=1.0) as resolver:
            await asyncio.wait_for(watch_periodically(sqlite_store.engine, org, resolver, stop, on_report=keep), 60)

    asyncio.run(main())
    assert len(reports[0].new) == 5 and reports[1].new == []
