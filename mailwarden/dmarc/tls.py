"""SMTP TLS reports (RFC 8460): JSON in, ``SmtpTlsReport`` out, read as parsedmarc reads them.

Required: ``organization-name``, ``date-range`` (start and end), ``contact-info``, ``report-id`` and a
list of ``policies``, each with ``policy.policy-type`` (tlsa, sts or no-policy-found),
``policy.policy-domain`` and the ``summary`` session counts; each failure detail needs ``result-type``
and ``failed-session-count``. Blank optional values count as absent. Anything else is a ReportError
that names the missing or wrong field.
"""

from __future__ import annotations

import json
from typing import Any

from mailwarden.dmarc.reports import SmtpTlsReport, TlsFailureDetail, TlsPolicy
from mailwarden.errors import ReportError

POLICY_TYPES = ("tlsa", "sts", "no-policy-found")
_REQUIRED = ("organization-name", "date-range", "contact-info", "report-id", "policies")
_OPTIONAL_DETAILS = (("sending-mta-ip", "sending_mta_ip"), ("receiving-ip", "receiving_ip"),
                     ("receiving-mx-hostname", "receiving_mx_hostname"),
                     ("receiving-mx-helo", "receiving_mx_helo"), ("failure-reason-code", "failure_reason_code"))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _get(table: Any, key: str, where: str) -> Any:
    if not isinstance(table, dict):
        raise ReportError(f"SMTP TLS report: {where} is not an object")
    if key not in table:
        raise ReportError(f"SMTP TLS report: {where} has no '{key}'")
    return table[key]


def _detail(data: Any, where: str) -> TlsFailureDetail:
    result_type = _get(data, "result-type", where)
    count = _get(data, "failed-session-count", where)
    extra: list[tuple[str, Any]] = [(name, data[key]) for key, name in _OPTIONAL_DETAILS if not _blank(data.get(key))]
    uri = data.get("additional-information")
    if _blank(uri):
        uri = data.get("additional-info-uri")
    if not _blank(uri):
        extra.append(("additional_info_uri", uri))
    return TlsFailureDetail(result_type, count, tuple(extra))


def _policy(data: Any, index: int) -> TlsPolicy:
    where = f"policies[{index}]"
    policy = _get(data, "policy", where)
    domain = _get(policy, "policy-domain", where + ".policy")
    kind = _get(policy, "policy-type", where + ".policy")
    if kind not in POLICY_TYPES:
        raise ReportError(f"SMTP TLS report: {where}.policy has policy-type {str(kind)[:40]!r}, "
                          f"expected one of {', '.join(POLICY_TYPES)}")
    strings = policy.get("policy-string")
    patterns = policy.get("mx-host-pattern")
    summary = _get(data, "summary", where)
    details: tuple[TlsFailureDetail, ...] | None = None
    if "failure-details" in data:
        raw = data["failure-details"]
        if not isinstance(raw, list):
            raise ReportError(f"SMTP TLS report: {where}.failure-details is not a list")
        details = tuple(_detail(d, f"{where}.failure-details[{i}]") for i, d in enumerate(raw))
    return TlsPolicy(
        policy_domain=domain, policy_type=kind,
        successful_session_count=_get(summary, "total-successful-session-count", where + ".summary"),
        failed_session_count=_get(summary, "total-failure-session-count", where + ".summary"),
        policy_strings=tuple(strings) if isinstance(strings, list) else (),
        mx_host_patterns=tuple(patterns) if isinstance(patterns, list) else (),
        failure_details=details)


def parse_tls_json(data: bytes) -> SmtpTlsReport:
    """An SMTP TLS report from its JSON (UTF-8, RFC 8259)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportError(f"SMTP TLS report: invalid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") \
            from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"SMTP TLS report: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") \
            from None
    except RecursionError:
        raise ReportError("SMTP TLS report: JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise ReportError("SMTP TLS report: the JSON is not an object")
    for key in _REQUIRED:
        if key not in document:
            raise ReportError(f"SMTP TLS report: missing required field '{key}'")
    policies = document["policies"]
    if not isinstance(policies, list):
        raise ReportError(f"SMTP TLS report: 'policies' must be a list, not {type(policies).__name__}")
    dates = document["date-range"]
    return SmtpTlsReport(
        organization_name=document["organization-name"],
        begin_date=_get(dates, "start-datetime", "date-range"),
        end_date=_get(dates, "end-datetime", "date-range"),
        contact_info=document["contact-info"],
        report_id=document["report-id"],
        policies=tuple(_policy(p, i) for i, p in enumerate(policies)))
