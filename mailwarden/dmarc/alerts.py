"""Alerts from reports, and the indicators they teach, written in the ingest's own transaction.

    unauthorised_source   an IP sent as an own domain, failed DMARC, and was never seen for that domain
                          in earlier reports (once the domain has ``baseline_reports`` of them); sources
                          whose failures forwarding explains (an override reason, or a DKIM signature
                          that verified for another domain) are spared; past ``max_source_alerts`` new
                          sources in one report, the rest make one ``unauthorised_sources`` alert
    failure_jump          a reporter's DMARC failures for a domain in one report are ``jump_factor`` times
                          its average over its earlier reports of the last ``baseline_days`` days
    spoof_evidence        a failure report: a message that failed DMARC as an own domain, headers included

Each alert is a ``dmarc_alerts`` row, unique by kind and key (the same report ingested twice alerts
once), plus a ``dmarc.alert`` event in the ``events`` outbox for the sinks (webhook, syslog). The
spoofing IPs and the foreign domains used with them become ``dmarc_indicators`` rows with a confidence.
Thresholds are data: ``mailwarden/data/dmarc.toml`` ``[alerts]``, overridable under ``[dmarc.alerts]``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from mailwarden.dmarc.reports import AggregateHeader, FailureReport
from mailwarden.dmarc.settings import AlertSettings
from mailwarden.store.models import Base

UNAUTHORISED_SOURCE = "unauthorised_source"
UNAUTHORISED_SOURCES = "unauthorised_sources"  # the new sources beyond max_source_alerts in one report
FAILURE_JUMP = "failure_jump"
SPOOF_EVIDENCE = "spoof_evidence"
ALERT_EVENT = "dmarc.alert"
REPORT_EVENT = "dmarc.report"
_IN_BATCH = 500


def table(name: str) -> Table:
    return Base.metadata.tables[name]


def insert_for(connection: Connection, target: Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT in the dialect's own flavour (both have ON CONFLICT)."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(target)
    return sqlite.insert(target)


def add_event(connection: Connection, event_type: str, payload: dict[str, Any], now: datetime) -> None:
    """An ``events`` outbox row (the gateway's table), when this schema has one."""
    events = Base.metadata.tables.get("events")
    if events is not None:
        connection.execute(events.insert().values(type=event_type, created_at=now, payload=payload))


@dataclass
class SourceTally:
    """What one source IP did as the reported domain in one aggregate report."""

    messages: int = 0
    failing: int = 0  # failed DMARC with no forwarding to explain it
    passing: int = 0
    header_from: set[str] = field(default_factory=set)
    foreign_domains: set[str] = field(default_factory=set)  # envelope and DKIM domains of failing mail

    def add(self, count: int, dmarc_pass: bool, excused: bool, header_from: str, foreign: Iterable[str]) -> None:
        self.messages += count
        if dmarc_pass:
            self.passing += count
        elif not excused:
            self.failing += count
            self.header_from.add(header_from)
            self.foreign_domains.update(foreign)


@dataclass(frozen=True)
class Alert:
    kind: str
    key: str
    domain: str
    detail: str
    source_ip: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "domain": self.domain, "source_ip": self.source_ip, "detail": self.detail,
                "data": self.data}


def raise_alert(connection: Connection, alert: Alert, now: datetime) -> bool:
    """Store the alert unless it exists already; True when it is new (and then an event is queued)."""
    alerts = table("dmarc_alerts")
    statement = insert_for(connection, alerts).values(
        kind=alert.kind, key=alert.key, domain=alert.domain, source_ip=alert.source_ip, detail=alert.detail,
        data=alert.data, created_at=now).on_conflict_do_nothing(index_elements=["kind", "key"]).returning(alerts.c.id)
    if connection.execute(statement).first() is None:
        return False
    add_event(connection, ALERT_EVENT, alert.to_dict(), now)
    return True


def add_indicator(connection: Connection, kind: str, value: str, spoofed_domain: str, source: str, confidence: int,
                  sightings: int, seen: datetime) -> None:
    indicators = table("dmarc_indicators")
    statement = insert_for(connection, indicators).values(
        kind=kind, value=value, spoofed_domain=spoofed_domain, source=source, confidence=confidence,
        sightings=sightings, first_seen=seen, last_seen=seen)
    excluded = statement.excluded
    connection.execute(statement.on_conflict_do_update(
        index_elements=["kind", "value", "spoofed_domain"],
        set_={"sightings": indicators.c.sightings + excluded.sightings,
              "confidence": case((excluded.confidence > indicators.c.confidence, excluded.confidence),
                                 else_=indicators.c.confidence),
              "first_seen": case((excluded.first_seen < indicators.c.first_seen, excluded.first_seen),
                                 else_=indicators.c.first_seen),
              "last_seen": case((excluded.last_seen > indicators.c.last_seen, excluded.last_seen),
                                else_=indicators.c.last_seen)}))
    _share(connection, kind, value, spoofed_domain, confidence, seen)


def _share(connection: Connection, kind: str, value: str, spoofed_domain: str, confidence: int,
           seen: datetime) -> None:
    """The same source in the shared indicator store (feeds, TAXII); never a reason to lose the report."""
    from mailwarden.intel.learn import record_spoofing_source

    try:
        with connection.begin_nested():
            record_spoofing_source(connection, kind=kind, value=value, spoofed_domain=spoofed_domain,
                                   confidence=confidence, now=seen)
    except Exception:
        logging.getLogger("mailwarden.dmarc").exception("spoofing source %s could not be shared", value)


def _known_sources(connection: Connection, domain: str, report_pk: int, candidates: Sequence[str]) -> set[str]:
    reports, records = table("dmarc_reports"), table("dmarc_records")
    known: set[str] = set()
    for start in range(0, len(candidates), _IN_BATCH):
        batch = candidates[start : start + _IN_BATCH]
        query = (select(records.c.source_ip).distinct().join(reports, reports.c.id == records.c.report)
                 .where(reports.c.domain == domain, reports.c.id != report_pk, records.c.source_ip.in_(batch)))
        known.update(connection.scalars(query))
    return known


def aggregate_alerts(connection: Connection, report_pk: int, header: AggregateHeader, tallies: dict[str, SourceTally],
                     failing_messages: int, settings: AlertSettings, now: datetime) -> list[Alert]:
    """The alerts a newly stored aggregate report raises (only the new ones are returned)."""
    reports, records = table("dmarc_reports"), table("dmarc_records")
    domain = header.policy.domain.lower()
    org = header.metadata.org_name
    raised: list[Alert] = []
    earlier = connection.scalar(select(func.count()).select_from(reports).where(
        reports.c.domain == domain, reports.c.id != report_pk)) or 0
    if earlier >= settings.baseline_reports:
        candidates = sorted(ip for ip, tally in tallies.items() if tally.failing and not tally.passing)
        new = sorted(set(candidates) - _known_sources(connection, domain, report_pk, candidates),
                     key=lambda ip: (-tallies[ip].failing, ip))
        for ip in new[settings.max_source_alerts:]:  # a flood: indicators for all, one alert for the rest
            add_indicator(connection, "ip", ip, domain, "dmarc-aggregate", settings.confidence_aggregate,
                          tallies[ip].failing, header.metadata.end)
        if len(new) > settings.max_source_alerts:
            rest = new[settings.max_source_alerts:]
            alert = Alert(UNAUTHORISED_SOURCES, f"{domain}|{org}|{header.metadata.report_id}", domain,
                          f"{len(rest)} more new sources sent {sum(tallies[ip].failing for ip in rest)} message(s) "
                          f"as {domain} that failed DMARC (reported by {org})", None,
                          {"reporter": org, "report_id": header.metadata.report_id, "sources": rest[:1000]})
            if raise_alert(connection, alert, now):
                raised.append(alert)
        for ip in new[: settings.max_source_alerts]:
            tally = tallies[ip]
            alert = Alert(UNAUTHORISED_SOURCE, f"{domain}|{ip}", domain,
                          f"{ip} sent {tally.failing} message(s) as {', '.join(sorted(tally.header_from))} that failed "
                          f"DMARC (reported by {org}); it was never seen sending for {domain} before", ip,
                          {"reporter": org, "report_id": header.metadata.report_id, "messages": tally.failing,
                           "header_from": sorted(tally.header_from), "other_domains": sorted(tally.foreign_domains)})
            if raise_alert(connection, alert, now):
                raised.append(alert)
                seen = header.metadata.end
                add_indicator(connection, "ip", ip, domain, "dmarc-aggregate", settings.confidence_aggregate,
                              tally.failing, seen)
                for other in sorted(tally.foreign_domains)[:20]:
                    add_indicator(connection, "domain", other, domain, "dmarc-aggregate",
                                  settings.confidence_aggregate, tally.failing, seen)
    begin = header.metadata.begin
    failing = func.coalesce(func.sum(case((records.c.dmarc_pass, 0), else_=records.c.count)), 0)
    history = (select(reports.c.id, failing.label("failing"))
               .select_from(reports.outerjoin(records, records.c.report == reports.c.id))
               .where(and_(reports.c.domain == domain, reports.c.org_name == org, reports.c.id != report_pk,
                           reports.c.begin_date >= begin - timedelta(days=settings.baseline_days),
                           reports.c.begin_date < begin))
               .group_by(reports.c.id))
    counts = [int(row.failing) for row in connection.execute(history)]
    if len(counts) >= settings.baseline_min_reports and failing_messages >= settings.jump_minimum:
        baseline = sum(counts) / len(counts)
        if failing_messages >= settings.jump_factor * max(baseline, 1.0):
            alert = Alert(FAILURE_JUMP, f"{domain}|{org}|{header.metadata.report_id}", domain,
                          f"{failing_messages} messages as {domain} failed DMARC in {org}'s report "
                          f"{header.metadata.report_id}, against {baseline:.0f} on average in its "
                          f"{len(counts)} earlier reports", None,
                          {"reporter": org, "report_id": header.metadata.report_id, "failing": failing_messages,
                           "baseline": round(baseline, 1), "earlier_reports": len(counts)})
            if raise_alert(connection, alert, now):
                raised.append(alert)
    return raised


def _domain_of(address: str | None) -> str | None:
    if not address:
        return None
    domain = address.strip().strip("<>").rpartition("@")[2].lower().rstrip(".")
    return domain or None


def failure_alerts(connection: Connection, digest: str, report: FailureReport, own: Iterable[str],
                   settings: AlertSettings, now: datetime) -> list[Alert]:
    """A failure report is evidence of a spoof of the reported domain: an alert and indicators."""
    from mailwarden.urls import organizational_domain

    domain = report.reported_domain.lower()
    own_orgs = {organizational_domain(d) for d in (domain, *own)}
    sender = report.parsed_sample.get("from") if isinstance(report.parsed_sample, dict) else None
    from_address = sender.get("address") if isinstance(sender, dict) else None
    alert = Alert(SPOOF_EVIDENCE, digest, domain,
                  f"a message from {report.source_ip} as {from_address or domain} failed "
                  f"{', '.join(report.auth_failure) or 'DMARC'} (failure report, arrived "
                  f"{report.arrival.isoformat()})", report.source_ip,
                  {"from": from_address, "subject": report.parsed_sample.get("subject"),
                   "original_mail_from": report.original_mail_from, "auth_failure": report.auth_failure,
                   "delivery_result": report.fields.get("delivery_result")})
    if not raise_alert(connection, alert, now):
        return []
    add_indicator(connection, "ip", report.source_ip, domain, "dmarc-failure", settings.confidence_failure, 1,
                  report.arrival)
    for other in (_domain_of(report.original_mail_from), report.fields.get("dkim_domain")):
        if isinstance(other, str) and other and organizational_domain(other) not in own_orgs:
            add_indicator(connection, "domain", other.lower(), domain, "dmarc-failure", settings.confidence_failure,
                          1, report.arrival)
    return [alert]
