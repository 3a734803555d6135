"""What the stored aggregate reports say: volumes, pass rates, alignment, dispositions, who sends as us.

    summary(engine, by="domain"|"source_ip"|"network"|"org"|"header_from", domain=, since=) -> [Summary]
    top_failing_sources(engine, domain=, since=, limit=) -> [Summary]    most DMARC-failing messages first
    senders(engine, domain=, since=) -> [Sender]                          "who sends as us"
    alert_page(engine, domain=, kind=, since=, until=, cursor=, limit=) -> Page   newest first, by cursor

``limit`` and ``offset`` page the summaries (the API's cursors carry the offset: the groups are sums,
whose order moves as reports arrive); alerts are paged by id like the Rejection and Release Logs.

Every figure counts messages (a record's ``count``), not records. Rates: ``spf_pass`` and ``dkim_pass``
are the raw results (a signature verified, SPF passed, for whatever domain), ``spf_aligned`` and
``dkim_aligned`` the results DMARC used (aligned with the From domain), ``dmarc_pass`` either aligned
pass. ``since`` filters on the start of each report's period.

A sender (a source IP sending as the domain) is ``authorised`` when at least ``AUTHORISED_SHARE`` of its
messages passed DMARC, ``unknown`` when none did, ``mixed`` in between (often forwarders and lists).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, Select, case, func, select

from mailwarden.dmarc.alerts import table
from mailwarden.gateway.paging import Page, page
from mailwarden.store.db import store_errors

Grouping = Literal["domain", "source_ip", "network", "org", "header_from"]
AUTHORISED_SHARE = 0.9


@dataclass(frozen=True)
class Summary:
    key: str
    messages: int
    dmarc_pass: int
    spf_pass: int
    dkim_pass: int
    spf_aligned: int
    dkim_aligned: int
    none: int
    quarantine: int
    reject: int
    reports: int

    def rate(self, value: int) -> float:
        return round(value / self.messages, 4) if self.messages else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "messages": self.messages, "reports": self.reports,
                "dmarc_pass": self.dmarc_pass, "dmarc_fail": self.messages - self.dmarc_pass,
                "rates": {"dmarc_pass": self.rate(self.dmarc_pass), "spf_pass": self.rate(self.spf_pass),
                          "dkim_pass": self.rate(self.dkim_pass), "spf_aligned": self.rate(self.spf_aligned),
                          "dkim_aligned": self.rate(self.dkim_aligned)},
                "disposition": {"none": self.none, "quarantine": self.quarantine, "reject": self.reject}}


@dataclass(frozen=True)
class Sender:
    source_ip: str
    network: str
    messages: int
    dmarc_pass: int
    header_from: tuple[str, ...]
    reporters: int
    status: Literal["authorised", "mixed", "unknown"]

    def to_dict(self) -> dict[str, Any]:
        return {"source_ip": self.source_ip, "network": self.network, "messages": self.messages,
                "dmarc_pass": self.dmarc_pass, "dmarc_fail": self.messages - self.dmarc_pass,
                "header_from": list(self.header_from), "reporters": self.reporters, "status": self.status}


def _counted(condition: ColumnElement[bool], count: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, count), else_=0)), 0)


def _group_column(by: Grouping) -> ColumnElement[Any]:
    reports, records = table("dmarc_reports"), table("dmarc_records")
    return {"domain": reports.c.domain, "source_ip": records.c.source_ip, "network": records.c.network,
            "org": reports.c.org_name, "header_from": records.c.header_from}[by]


def _filtered(query: Select[Any], domain: str | None, since: datetime | None) -> Select[Any]:
    reports, records = table("dmarc_reports"), table("dmarc_records")
    if domain:
        domain = domain.lower().rstrip(".")
        query = query.where((reports.c.domain == domain) | (records.c.header_from == domain)
                            | records.c.header_from.endswith("." + domain))
    if since is not None:
        query = query.where(reports.c.begin_date >= since)
    return query


def _summary_query(by: Grouping, domain: str | None, since: datetime | None) -> Select[Any]:
    reports, records = table("dmarc_reports"), table("dmarc_records")
    key = _group_column(by)
    count = records.c.count
    messages = func.coalesce(func.sum(count), 0)
    query = (select(key.label("key"), messages.label("messages"),
                    _counted(records.c.dmarc_pass, count).label("dmarc_pass"),
                    _counted(records.c.spf_pass, count).label("spf_pass"),
                    _counted(records.c.dkim_pass, count).label("dkim_pass"),
                    _counted(records.c.spf_aligned, count).label("spf_aligned"),
                    _counted(records.c.dkim_aligned, count).label("dkim_aligned"),
                    _counted(records.c.disposition == "none", count).label("none"),
                    _counted(records.c.disposition == "quarantine", count).label("quarantine"),
                    _counted(records.c.disposition == "reject", count).label("reject"),
                    func.count(func.distinct(reports.c.id)).label("reports"))
             .select_from(records.join(reports, reports.c.id == records.c.report))
             .group_by(key))
    return _filtered(query, domain, since)


def _summaries(engine: Engine, query: Select[Any]) -> list[Summary]:
    with store_errors("query DMARC reports in", engine.url), engine.connect() as connection:
        return [Summary(str(row.key), *(int(v) for v in row[1:])) for row in connection.execute(query)]


def summary(engine: Engine, by: Grouping = "domain", *, domain: str | None = None, since: datetime | None = None,
            limit: int | None = None, offset: int = 0) -> list[Summary]:
    """Per domain, source IP, network, reporting organisation or From domain: most messages first."""
    query = _summary_query(by, domain, since).order_by(func.sum(table("dmarc_records").c.count).desc(),
                                                       _group_column(by))
    return _summaries(engine, query.limit(limit).offset(offset) if limit else query.offset(offset))


def top_failing_sources(engine: Engine, *, domain: str | None = None, since: datetime | None = None,
                        limit: int = 20, offset: int = 0) -> list[Summary]:
    records = table("dmarc_records")
    failing = _counted(~records.c.dmarc_pass, records.c.count)
    query = (_summary_query("source_ip", domain, since).having(failing > 0)
             .order_by(failing.desc(), records.c.source_ip).limit(limit).offset(offset))
    return _summaries(engine, query)


def senders(engine: Engine, *, domain: str | None = None, since: datetime | None = None,
            limit: int | None = None, offset: int = 0) -> list[Sender]:
    """Who sends as the domain(s): each source IP with its share of DMARC-passing messages."""
    reports, records = table("dmarc_reports"), table("dmarc_records")
    count = records.c.count
    messages = func.coalesce(func.sum(count), 0)
    query = (select(records.c.source_ip, func.min(records.c.network).label("network"), messages.label("messages"),
                    _counted(records.c.dmarc_pass, count).label("dmarc_pass"),
                    func.count(func.distinct(reports.c.org_name)).label("reporters"))
             .select_from(records.join(reports, reports.c.id == records.c.report))
             .group_by(records.c.source_ip).order_by(messages.desc(), records.c.source_ip))
    query = _filtered(query, domain, since)
    if limit:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    with store_errors("query DMARC reports in", engine.url), engine.connect() as connection:
        rows = list(connection.execute(query))
        froms = _filtered(select(records.c.source_ip, records.c.header_from).distinct()
                          .select_from(records.join(reports, reports.c.id == records.c.report)), domain, since)
        if limit is not None:  # a page: only its sources' From domains
            froms = froms.where(records.c.source_ip.in_([row.source_ip for row in rows]))
        header_froms: dict[str, set[str]] = {}
        for ip, header_from in connection.execute(froms):
            header_froms.setdefault(ip, set()).add(header_from)
        found = []
        for row in rows:
            total, passed = int(row.messages), int(row.dmarc_pass)
            status: Literal["authorised", "mixed", "unknown"] = (
                "unknown" if passed == 0 else "authorised" if passed >= AUTHORISED_SHARE * total else "mixed")
            found.append(Sender(row.source_ip, row.network, total, passed,
                                tuple(sorted(header_froms.get(row.source_ip, ()))), int(row.reporters), status))
        return found


def recent_alerts(engine: Engine, *, domain: str | None = None, since: datetime | None = None,
                  limit: int = 50) -> list[dict[str, Any]]:
    alerts = table("dmarc_alerts")
    query = select(alerts).order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(limit)
    if domain:
        query = query.where(alerts.c.domain == domain.lower())
    if since is not None:
        query = query.where(alerts.c.created_at >= since)
    with store_errors("query DMARC alerts in", engine.url), engine.connect() as connection:
        return [{"kind": row.kind, "domain": row.domain, "source_ip": row.source_ip, "detail": row.detail,
                 "created_at": row.created_at.isoformat(), "data": row.data} for row in connection.execute(query)]


ALERT_KINDS = ("unauthorised_source", "unauthorised_sources", "failure_jump", "spoof_evidence")


def alert_dict(row: dict[str, Any]) -> dict[str, Any]:
    """An alert as the API and ``logs dmarc-alerts`` show it (parsedmarc's ``source_ip_address``)."""
    return {"id": row["id"], "time": row["created_at"], "kind": row["kind"], "domain": row["domain"],
            "source_ip_address": row["source_ip"], "detail": row["detail"], "data": row["data"]}


def alert_page(engine: Engine, *, domain: str | None = None, kind: str | None = None, since: datetime | None = None,
               until: datetime | None = None, cursor: str | None = None, limit: int = 50) -> Page:
    """DMARC alerts, newest first; raises CursorError for a cursor we did not make."""
    alerts = table("dmarc_alerts")
    query = select(alerts)
    if domain:
        query = query.where(alerts.c.domain == domain.lower().rstrip("."))
    if kind:
        query = query.where(alerts.c.kind == kind)
    if since is not None:
        query = query.where(alerts.c.created_at >= since)
    if until is not None:
        query = query.where(alerts.c.created_at < until)
    with store_errors("query DMARC alerts in", engine.url), engine.connect() as connection:
        found = page(connection, alerts, query, cursor, limit)
    return Page([alert_dict(item) for item in found.items], found.next_cursor)


def indicators(engine: Engine, *, domain: str | None = None) -> list[dict[str, Any]]:
    rows = table("dmarc_indicators")
    query = select(rows).order_by(rows.c.last_seen.desc(), rows.c.id)
    if domain:
        query = query.where(rows.c.spoofed_domain == domain.lower())
    with store_errors("query DMARC indicators in", engine.url), engine.connect() as connection:
        return [{"kind": r.kind, "value": r.value, "spoofed_domain": r.spoofed_domain, "source": r.source,
                 "confidence": r.confidence, "sightings": r.sightings, "first_seen": r.first_seen.isoformat(),
                 "last_seen": r.last_seen.isoformat()} for r in connection.execute(query)]
