"""Storing reports: transactional, idempotent, and nothing lost when input is bad.

    with DmarcIngest.open(settings) as ingest:          # or DmarcIngest(engine, data_dir) on an open Store
        result = ingest.ingest_bytes(raw, source="imap://mx/INBOX;UID=7")   # what the gateway and API call
        result = ingest.ingest_file(path)                                    # streams large files from disk
    result.stored, result.duplicates, result.errors, result.kept_aside

Each report is stored in one transaction: the report row (unique by reporter, report id and domain;
failure reports by the digest of their content; TLS reports by reporter and report id), its records in
batches, the alerts and indicators it raises and a ``dmarc.report`` event. A report already stored is a
duplicate and nothing is written; a process killed mid-way leaves no trace of the report it was
storing, so running the same input again stores everything exactly once.

Input that holds no readable report, or a part of it that is bad (invalid XML, bad UTF-8, wrong
compression, over a limit), is kept aside whole in ``<data dir>/dmarc/invalid/`` next to a JSON file
naming the errors; the reports it also held are stored as usual.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from sqlalchemy import Connection, Engine, update

from mailwarden.dmarc.alerts import (
    REPORT_EVENT,
    SourceTally,
    add_event,
    aggregate_alerts,
    failure_alerts,
    insert_for,
    table,
)
from mailwarden.dmarc.limits import DEFAULT_LIMITS, Limits
from mailwarden.dmarc.parser import Failed, Found, Item, parse_bytes, parse_path
from mailwarden.dmarc.reports import AggregateHeader, AggregateRecord, FailureReport, ReportType, SmtpTlsReport
from mailwarden.dmarc.settings import DmarcSettings, default_settings
from mailwarden.errors import ReportError, StoreError
from mailwarden.store.db import begin_write, store_errors

if TYPE_CHECKING:
    from mailwarden.config import Settings

RECORD_BATCH = 1000
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class StoredReport:
    part: str
    report_type: ReportType
    key: str
    status: Literal["stored", "duplicate"]
    records: int = 0
    messages: int = 0
    alerts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part, "report_type": self.report_type, "key": self.key, "status": self.status,
                "records": self.records, "messages": self.messages, "alerts": self.alerts}


@dataclass
class IngestResult:
    source: str
    reports: list[StoredReport] = field(default_factory=list)
    errors: list[Failed] = field(default_factory=list)
    kept_aside: Path | None = None

    @property
    def stored(self) -> int:
        return sum(1 for r in self.reports if r.status == "stored")

    @property
    def duplicates(self) -> int:
        return sum(1 for r in self.reports if r.status == "duplicate")

    @property
    def ok(self) -> bool:
        """Every part was read and stored (or was already there): the input can be moved as processed."""
        return not self.errors and bool(self.reports)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "stored": self.stored, "duplicates": self.duplicates,
                "reports": [r.to_dict() for r in self.reports],
                "errors": [{"part": e.part, "error": e.error} for e in self.errors],
                "kept_aside": str(self.kept_aside) if self.kept_aside else None}


def network_of(ip: str) -> tuple[str, str]:
    """(the address in canonical form, its /24 or /64 network)."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 64
    return str(address), str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _now() -> datetime:
    return datetime.now(UTC)


class DmarcIngest:
    """Stores the reports of some input; see the module docstring."""

    def __init__(self, engine: Engine, data_dir: Path, *, own_domains: tuple[str, ...] = (),
                 settings: DmarcSettings | None = None, limits: Limits = DEFAULT_LIMITS,
                 clock: Any = _now) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.own_domains = tuple(d.lower() for d in own_domains)
        self.settings = settings or default_settings()
        self.limits = limits
        self.clock = clock
        self._owned_engine = False

    @classmethod
    def open(cls, settings: Settings, *, own_domains: tuple[str, ...] = (), dmarc: DmarcSettings | None = None,
             limits: Limits = DEFAULT_LIMITS) -> Self:
        """Open (and migrate) the configured database; close with ``close()`` or a ``with`` block."""
        from mailwarden.store import Store

        store = Store.open(settings)
        ingest = cls(store.engine, settings.data_dir, own_domains=own_domains, settings=dmarc, limits=limits)
        ingest._owned_engine = True
        return ingest

    def close(self) -> None:
        if self._owned_engine:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- entry points -------------------------------------------------------------------------------

    def ingest_bytes(self, raw: bytes, source: str) -> IngestResult:
        """Store every report in ``raw`` (a report file's bytes or a whole email)."""
        result = self._ingest(parse_bytes(raw, self.limits), source)
        if result.errors:
            result.kept_aside = self._keep_aside_bytes(raw, source, result)
        return result

    def ingest_file(self, path: Path) -> IngestResult:
        result = self._ingest(parse_path(path, self.limits), str(path))
        if result.errors:
            result.kept_aside = self._keep_aside_file(path, result)
        return result

    # --- storing ------------------------------------------------------------------------------------

    def _ingest(self, items: Iterator[Item], source: str) -> IngestResult:
        result = IngestResult(source)
        for item in items:
            if isinstance(item, Failed):
                result.errors.append(item)
                continue
            try:
                stored = self._store(item, source)
            except ReportError as exc:
                result.errors.append(Failed(item.part, str(exc)))
                continue
            result.reports.append(stored)
        return result

    def _store(self, item: Found, source: str) -> StoredReport:
        with store_errors("store a DMARC report in", self.engine.url), begin_write(self.engine) as connection:
            if item.stream is not None:
                return self._store_aggregate(connection, item, source)
            if isinstance(item.report, FailureReport):
                return self._store_failure(connection, item.part, item.report, source)
            assert isinstance(item.report, SmtpTlsReport)
            return self._store_tls(connection, item.part, item.report, source)

    def _store_aggregate(self, connection: Connection, item: Found, source: str) -> StoredReport:
        assert item.stream is not None
        reports, records = table("dmarc_reports"), table("dmarc_records")
        now = self.clock()
        header: AggregateHeader | None = None
        report_pk = 0
        batch: list[dict[str, Any]] = []
        tallies: dict[str, SourceTally] = {}
        networks: dict[str, tuple[str, str]] = {}
        count = messages = failing = 0
        excuses = frozenset(self.settings.alerts.forwarding_reasons)
        for entry in item.stream:
            if isinstance(entry, AggregateHeader):
                header = entry
                meta, policy = header.metadata, header.policy
                statement = insert_for(connection, reports).values(
                    org_name=meta.org_name, report_id=meta.report_id, domain=policy.domain.lower(),
                    org_email=meta.org_email, begin_date=meta.begin, end_date=meta.end, xml_schema=header.xml_schema,
                    policy=policy.to_dict(), errors=list(meta.errors), warnings=[], record_count=0, message_count=0,
                    source=source, received_at=now,
                ).on_conflict_do_nothing(index_elements=["org_name", "report_id", "domain"]).returning(reports.c.id)
                row = connection.execute(statement).first()
                if row is None:
                    close = getattr(item.stream, "close", None)
                    if close is not None:
                        close()
                    return StoredReport(item.part, "aggregate", _aggregate_key(header), "duplicate")
                report_pk = int(row[0])
                continue
            record: AggregateRecord = entry
            ip, network = networks.get(record.source_ip) or networks.setdefault(record.source_ip,
                                                                                  network_of(record.source_ip))
            dmarc_pass = record.dmarc_pass
            batch.append(_record_row(report_pk, record, ip, network, dmarc_pass))
            count += 1
            messages += record.count
            if not dmarc_pass:
                failing += record.count
            excused = any(r.type in excuses for r in record.reasons) or record.dkim_auth_pass
            foreign = {r.domain.lower() for r in record.dkim_results} | (
                {record.envelope_from.lower()} if record.envelope_from else set())
            tally = tallies.get(ip)
            if tally is None:
                tally = tallies[ip] = SourceTally()
            tally.add(record.count, dmarc_pass, excused, record.header_from, foreign - {record.header_from})
            if len(batch) >= RECORD_BATCH:
                connection.execute(records.insert(), batch)
                batch = []
        if header is None:
            raise ReportError("the report has no <report_metadata>")
        if batch:
            connection.execute(records.insert(), batch)
        connection.execute(update(reports).where(reports.c.id == report_pk).values(
            record_count=count, message_count=messages, warnings=list(header.warnings)))
        alerts = aggregate_alerts(connection, report_pk, header, tallies, failing, self.settings.alerts, now)
        key = _aggregate_key(header)
        add_event(connection, REPORT_EVENT, {"report_type": "aggregate", "key": key, "domain": header.policy.domain,
                                             "reporter": header.metadata.org_name, "records": count,
                                             "messages": messages, "failing": failing}, now)
        return StoredReport(item.part, "aggregate", key, "stored", count, messages, [a.kind for a in alerts])

    def _store_failure(self, connection: Connection, part: str, report: FailureReport, source: str) -> StoredReport:
        failures = table("dmarc_failure_reports")
        now = self.clock()
        document = report.to_dict()
        digest = hashlib.sha256(json.dumps({k: v for k, v in document.items() if k != "parsed_sample"},
                                           sort_keys=True, default=str).encode()).hexdigest()
        statement = insert_for(connection, failures).values(
            digest=digest, reported_domain=report.reported_domain.lower(), source_ip=report.source_ip,
            arrival=report.arrival, original_mail_from=report.original_mail_from, auth_failure=report.auth_failure,
            report=document, source=source, received_at=now,
        ).on_conflict_do_nothing(index_elements=["digest"]).returning(failures.c.id)
        key = f"{report.reported_domain} {report.source_ip} {digest[:12]}"
        if connection.execute(statement).first() is None:
            return StoredReport(part, "failure", key, "duplicate")
        alerts = failure_alerts(connection, digest, report, self.own_domains, self.settings.alerts, now)
        add_event(connection, REPORT_EVENT, {"report_type": "failure", "key": key, "domain": report.reported_domain,
                                             "source_ip": report.source_ip}, now)
        return StoredReport(part, "failure", key, "stored", 0, 1, [a.kind for a in alerts])

    def _store_tls(self, connection: Connection, part: str, report: SmtpTlsReport, source: str) -> StoredReport:
        tls = table("dmarc_tls_reports")
        now = self.clock()
        ok = sum(_int(p.successful_session_count) for p in report.policies)
        bad = sum(_int(p.failed_session_count) for p in report.policies)
        statement = insert_for(connection, tls).values(
            organization_name=str(report.organization_name), report_id=str(report.report_id),
            begin_date=str(report.begin_date), end_date=str(report.end_date), successful_sessions=ok,
            failed_sessions=bad, policies=[p.to_dict() for p in report.policies], source=source, received_at=now,
        ).on_conflict_do_nothing(index_elements=["organization_name", "report_id"]).returning(tls.c.id)
        key = f"{report.organization_name} {report.report_id}"
        if connection.execute(statement).first() is None:
            return StoredReport(part, "smtp_tls", key, "duplicate")
        add_event(connection, REPORT_EVENT, {"report_type": "smtp_tls", "key": key, "successful_sessions": ok,
                                             "failed_sessions": bad}, now)
        return StoredReport(part, "smtp_tls", key, "stored", len(report.policies), ok + bad)

    # --- keeping bad input aside --------------------------------------------------------------------

    @property
    def invalid_dir(self) -> Path:
        return self.data_dir / "dmarc" / "invalid"

    def _aside_path(self, digest: str, name: str) -> Path:
        safe = _SAFE_NAME.sub("_", Path(name).name)[-80:] or "input"
        return self.invalid_dir / f"{digest[:16]}-{safe}"

    def _write_note(self, target: Path, result: IngestResult) -> None:
        note = {"source": result.source, "time": self.clock().isoformat(),
                "errors": [{"part": e.part, "error": e.error} for e in result.errors],
                "stored": [r.to_dict() for r in result.reports]}
        target.with_name(target.name + ".error.json").write_text(json.dumps(note, indent=2, ensure_ascii=False),
                                                                 encoding="utf-8")

    def _keep_aside_bytes(self, raw: bytes, source: str, result: IngestResult) -> Path:
        target = self._aside_path(hashlib.sha256(raw).hexdigest(), source.rsplit("/", 1)[-1])
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(raw)
            self._write_note(target, result)
        except OSError as exc:
            raise StoreError(f"cannot keep bad input aside in {target.parent}: {exc}") from exc
        return target

    def _keep_aside_file(self, path: Path, result: IngestResult) -> Path:
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        except OSError:
            digest.update(str(path).encode())
        target = self._aside_path(digest.hexdigest(), path.name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                shutil.copyfile(path, target)
            self._write_note(target, result)
        except OSError as exc:
            raise StoreError(f"cannot keep bad input aside in {target.parent}: {exc}") from exc
        return target


def _aggregate_key(header: AggregateHeader) -> str:
    org, report_id, domain = header.key
    return f"{org} {report_id} {domain}"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _record_row(report_pk: int, record: AggregateRecord, ip: str, network: str, dmarc_pass: bool) -> dict[str, Any]:
    return {
        "report": report_pk, "source_ip": ip, "network": network, "count": record.count,
        "disposition": record.disposition, "policy_dkim": record.dkim, "policy_spf": record.spf,
        "dkim_aligned": record.dkim_aligned, "spf_aligned": record.spf_aligned, "dmarc_pass": dmarc_pass,
        "dkim_pass": record.dkim_auth_pass, "spf_pass": record.spf_auth_pass, "header_from": record.header_from,
        "envelope_from": record.envelope_from, "envelope_to": record.envelope_to,
        "dkim_results": [r.to_dict() for r in record.dkim_results],
        "spf_results": [r.to_dict() for r in record.spf_results],
        "reasons": [r.to_dict() for r in record.reasons],
    }


def ingest_bytes(raw: bytes, source: str, settings: Settings, own_domains: tuple[str, ...] = ()) -> IngestResult:
    """One-shot: open the configured store, store the reports in ``raw``, close."""
    with DmarcIngest.open(settings, own_domains=own_domains) as ingest:
        return ingest.ingest_bytes(raw, source)
