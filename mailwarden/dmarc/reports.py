"""The parsed reports, and their JSON in parsedmarc's field names and nesting.

    AggregateHeader + AggregateRecord...   a DMARC aggregate report (RFC 7489 / RFC 9990), streamed
    AggregateReport                       the same held whole (small reports, tests)
    FailureReport                         a DMARC failure (forensic) report (RFC 6591 ARF or plain text)
    SmtpTlsReport                         an SMTP TLS report (RFC 8460)

``to_dict()`` gives the JSON that ``mailwarden dmarc parse`` prints. Field names and nesting are
parsedmarc's wherever the concept is the same (``report_metadata.org_name``, ``policy_published.p``,
``records[].source.ip_address``, ``records[].policy_evaluated.disposition``,
``records[].auth_results.dkim[].selector``...), so dashboards built on parsedmarc's output keep working.
The intended differences are listed in the README ("DMARC reports").

Times are UTC, written ``YYYY-MM-DD HH:MM:SS`` like parsedmarc's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, Literal

ReportType = Literal["aggregate", "failure", "smtp_tls"]
NORMALIZE_TIMESPAN_SECONDS = 24 * 3600  # parsedmarc's default threshold for splitting a report by day


def _json(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def human_time(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes such years unpadded on glibc
        return utc.strftime("%Y-%m-%d %H:%M:%S")
    return utc.isoformat(" ")[:19]


# --- aggregate ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class DkimAuthResult:
    domain: str
    selector: str = "none"
    result: str = "none"
    human_result: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "selector": self.selector, "result": self.result,
                "human_result": self.human_result}


@dataclass(slots=True)
class SpfAuthResult:
    domain: str
    scope: str = "mfrom"
    result: str = "none"
    human_result: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "scope": self.scope, "result": self.result,
                "human_result": self.human_result}


@dataclass(slots=True)
class OverrideReason:
    type: str | None
    comment: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "comment": self.comment}


@dataclass(slots=True)
class AggregateRecord:
    """One ``<record>``: a source IP, a message count and how those messages were evaluated."""

    source_ip: str  # as the reporter wrote it, lower-cased (parsedmarc's ``source.ip_address``)
    count: int
    disposition: str | None = "none"
    dkim: str | None = "fail"  # policy_evaluated: the DKIM result after alignment
    spf: str | None = "fail"
    reasons: tuple[OverrideReason, ...] = ()
    header_from: str = ""
    envelope_from: str | None = None
    envelope_to: str | None = None
    dkim_results: tuple[DkimAuthResult, ...] = ()
    spf_results: tuple[SpfAuthResult, ...] = ()

    @property
    def dkim_aligned(self) -> bool:
        return self.dkim is not None and self.dkim.lower() == "pass"

    @property
    def spf_aligned(self) -> bool:
        return self.spf is not None and self.spf.lower() == "pass"

    @property
    def dmarc_pass(self) -> bool:
        return self.dkim_aligned or self.spf_aligned

    @property
    def dkim_auth_pass(self) -> bool:
        """Any DKIM signature verified, aligned or not (the raw result)."""
        return any(r.result == "pass" for r in self.dkim_results)

    @property
    def spf_auth_pass(self) -> bool:
        return any(r.result == "pass" for r in self.spf_results)

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(self.source_ip)

    def to_json(self, interval: tuple[str, str] = ("", "")) -> str:
        """``json.dumps(self.to_dict(interval), ensure_ascii=False)``, built directly (the hot path of parse)."""
        j = _json
        spf_aligned, dkim_aligned = self.spf_aligned, self.dkim_aligned
        reasons = ", ".join(f'{{"type": {j(r.type)}, "comment": {j(r.comment)}}}'
                            for r in self.reasons) if self.reasons else ""
        dkim = ", ".join(f'{{"domain": {j(r.domain)}, "selector": {j(r.selector)}, "result": {j(r.result)}, '
                         f'"human_result": {j(r.human_result)}}}'
                         for r in self.dkim_results) if self.dkim_results else ""
        spf = ", ".join(f'{{"domain": {j(r.domain)}, "scope": {j(r.scope)}, "result": {j(r.result)}, '
                        f'"human_result": {j(r.human_result)}}}'
                        for r in self.spf_results) if self.spf_results else ""
        return (f'{{"source": {{"ip_address": {j(self.source_ip)}}}, "count": {int(self.count)}, '
                f'"alignment": {{"spf": {"true" if spf_aligned else "false"}, '
                f'"dkim": {"true" if dkim_aligned else "false"}, '
                f'"dmarc": {"true" if spf_aligned or dkim_aligned else "false"}}}, '
                f'"policy_evaluated": {{"disposition": {j(self.disposition)}, "dkim": {j(self.dkim)}, '
                f'"spf": {j(self.spf)}, "policy_override_reasons": [{reasons}]}}, '
                f'"identifiers": {{"header_from": {j(self.header_from)}, "envelope_from": {j(self.envelope_from)}, '
                f'"envelope_to": {j(self.envelope_to)}}}, "auth_results": {{"dkim": [{dkim}], "spf": [{spf}]}}, '
                f'"normalized_timespan": false, "interval_begin": {j(interval[0])}, '
                f'"interval_end": {j(interval[1])}}}')

    def to_dict(self, interval: tuple[str, str] = ("", "")) -> dict[str, Any]:
        return {
            "source": {"ip_address": self.source_ip},
            "count": self.count,
            "alignment": {"spf": self.spf_aligned, "dkim": self.dkim_aligned, "dmarc": self.dmarc_pass},
            "policy_evaluated": {"disposition": self.disposition, "dkim": self.dkim, "spf": self.spf,
                                 "policy_override_reasons": [r.to_dict() for r in self.reasons]},
            "identifiers": {"header_from": self.header_from, "envelope_from": self.envelope_from,
                            "envelope_to": self.envelope_to},
            "auth_results": {"dkim": [r.to_dict() for r in self.dkim_results],
                             "spf": [r.to_dict() for r in self.spf_results]},
            "normalized_timespan": False,
            "interval_begin": interval[0],
            "interval_end": interval[1],
        }


@dataclass(frozen=True, slots=True)
class ReportMetadata:
    org_name: str
    org_email: str | None
    org_extra_contact_info: str | None
    report_id: str
    begin: datetime
    end: datetime
    errors: tuple[str, ...] = ()
    generator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        span = int((self.end - self.begin).total_seconds())
        return {
            "org_name": self.org_name,
            "org_email": self.org_email,
            "org_extra_contact_info": self.org_extra_contact_info,
            "report_id": self.report_id,
            "begin_date": human_time(self.begin),
            "end_date": human_time(self.end),
            "timespan_requires_normalization": span > NORMALIZE_TIMESPAN_SECONDS,
            "original_timespan_seconds": span,
            "errors": list(self.errors),
            "generator": self.generator,
        }


@dataclass(frozen=True, slots=True)
class PolicyPublished:
    domain: str
    p: str | None
    sp: str | None
    adkim: str = "r"
    aspf: str = "r"
    pct: str | None = None  # as written, like parsedmarc (a string)
    fo: str | None = None
    np: str | None = None  # RFC 9990
    testing: str | None = None  # RFC 9990
    discovery_method: str | None = None  # RFC 9990

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "adkim": self.adkim, "aspf": self.aspf, "p": self.p, "sp": self.sp,
                "pct": self.pct, "fo": self.fo, "np": self.np, "testing": self.testing,
                "discovery_method": self.discovery_method}


@dataclass(frozen=True, slots=True)
class AggregateHeader:
    """Everything in an aggregate report but its records."""

    xml_schema: str | None
    xml_namespace: str | None
    metadata: ReportMetadata
    policy: PolicyPublished
    # records skipped and why (not in parsedmarc's output); a streamed report adds to it until its end
    warnings: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes a report unique: the reporter, its report id and the domain reported on."""
        return self.metadata.org_name, self.metadata.report_id, self.policy.domain.lower()

    @property
    def interval(self) -> tuple[str, str]:
        return human_time(self.metadata.begin), human_time(self.metadata.end)

    def to_dict(self) -> dict[str, Any]:
        """The report without ``records`` (the caller appends them, possibly streamed)."""
        return {"xml_schema": self.xml_schema, "xml_namespace": self.xml_namespace,
                "report_metadata": self.metadata.to_dict(), "policy_published": self.policy.to_dict(),
                "warnings": list(self.warnings)}


@dataclass(frozen=True, slots=True)
class AggregateReport:
    header: AggregateHeader
    records: tuple[AggregateRecord, ...]

    report_type: ReportType = "aggregate"

    def to_dict(self) -> dict[str, Any]:
        interval = self.header.interval
        return {**self.header.to_dict(), "records": [r.to_dict(interval) for r in self.records]}


# --- failure -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FailureReport:
    """A failure report. ``fields`` holds every ``Name: value`` of the feedback report as parsedmarc
    keys them (lower case, ``-`` as ``_``); the typed attributes are the ones queries and alerts use."""

    fields: dict[str, Any]
    source_ip: str
    arrival: datetime
    reported_domain: str
    sample: str
    sample_headers_only: bool
    parsed_sample: dict[str, Any] = field(default_factory=dict)

    report_type: ReportType = "failure"

    @property
    def auth_failure(self) -> list[str]:
        return list(self.fields.get("auth_failure") or [])

    @property
    def original_mail_from(self) -> str | None:
        value = self.fields.get("original_mail_from")
        return str(value) if value else None

    def to_dict(self) -> dict[str, Any]:
        return {**self.fields, "arrival_date_utc": human_time(self.arrival), "source": {"ip_address": self.source_ip},
                "reported_domain": self.reported_domain, "sample_headers_only": self.sample_headers_only,
                "sample": self.sample, "parsed_sample": self.parsed_sample}


# --- SMTP TLS ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TlsFailureDetail:
    result_type: str
    failed_session_count: int
    extra: tuple[tuple[str, Any], ...] = ()  # sending_mta_ip, receiving_ip, ... when given

    def to_dict(self) -> dict[str, Any]:
        return {"result_type": self.result_type, "failed_session_count": self.failed_session_count,
                **dict(self.extra)}


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    policy_domain: str
    policy_type: str
    successful_session_count: int
    failed_session_count: int
    policy_strings: tuple[str, ...] = ()
    mx_host_patterns: tuple[str, ...] = ()
    failure_details: tuple[TlsFailureDetail, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"policy_domain": self.policy_domain, "policy_type": self.policy_type}
        if self.policy_strings:
            out["policy_strings"] = list(self.policy_strings)
        if self.mx_host_patterns:
            out["mx_host_patterns"] = list(self.mx_host_patterns)
        out["successful_session_count"] = self.successful_session_count
        out["failed_session_count"] = self.failed_session_count
        if self.failure_details is not None:
            out["failure_details"] = [d.to_dict() for d in self.failure_details]
        return out


@dataclass(frozen=True, slots=True)
class SmtpTlsReport:
    organization_name: str
    begin_date: str  # RFC 3339 as written
    end_date: str
    contact_info: str
    report_id: str
    policies: tuple[TlsPolicy, ...]

    report_type: ReportType = "smtp_tls"

    def to_dict(self) -> dict[str, Any]:
        return {"organization_name": self.organization_name, "begin_date": self.begin_date,
                "end_date": self.end_date, "contact_info": self.contact_info, "report_id": self.report_id,
                "policies": [p.to_dict() for p in self.policies]}


Report = AggregateReport | FailureReport | SmtpTlsReport
