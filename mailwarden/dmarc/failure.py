"""DMARC failure (forensic) reports: ARF (RFC 5965 / RFC 6591) and plain-text-only ones.

    build_failure(feedback_text, sample, message_date) -> FailureReport
    plain_text_failure(text) -> (feedback_text, sample) | None      Exim's plain-text-only report

The ``message/feedback-report`` fields are read as parsedmarc reads them: every ``Name: value`` line,
keyed in lower case with ``-`` as ``_``. Missing fields get parsedmarc's defaults (Feedback-Type
``auth-failure``, Auth-Failure ``dmarc``, Arrival-Date from the report's Date); a report without
Source-IP, or without a reported domain when the sample has no From domain either, is a ReportError.
"""

from __future__ import annotations

import email
import email.header
import email.message
import email.utils
import re
from datetime import UTC, datetime
from typing import Any

from mailwarden.dmarc.reports import FailureReport
from mailwarden.errors import ReportError

FEEDBACK_FIELD = re.compile(r"^([\w\-]+): ([^\r\n]+)\r?$", re.MULTILINE)
DELIVERY_RESULTS = ("delivered", "spam", "policy", "reject", "other")
SAMPLE_TYPES = frozenset({
    "text/rfc822", "text-rfc-822", "text/rfc822-headers", "text/rfc-822-headers", "message/rfc822",
    "message/rfc-822", "message/rfc822-headers", "message/rfc-822-headers"})
PLAIN_TEXT_MARK = "A message claiming to be from you has failed"
_PLAIN_FIELD = re.compile(r"^[ \t]*([A-Za-z]+(?: [A-Za-z]+)*):[ \t]+([^\r\n]+)", re.MULTILINE)


def parse_date(text: str) -> datetime | None:
    """An RFC 5322 or ISO 8601 date; a date without a zone is taken as UTC."""
    text = text.strip()
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def plain_text_failure(text: str) -> tuple[str, str] | None:
    """(feedback fields, sample) of a plain-text-only failure report, or None if ``text`` is not one."""
    if PLAIN_TEXT_MARK not in text:
        return None
    head, _, rest = text.partition("detected.")
    fields = {m.group(1).lower().replace(" ", "-"): m.group(2).strip() for m in _PLAIN_FIELD.finditer(head)}
    if "received-date" not in fields or "sender-ip-address" not in fields:
        raise ReportError("plain-text failure report without 'Received date' and 'Sender IP Address'")
    return f"Arrival-Date: {fields['received-date']}\nSource-IP: {fields['sender-ip-address']}", rest.lstrip()


def _decoded(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (email.errors.HeaderParseError, LookupError, ValueError, UnicodeError):
        return value


def _addresses(values: list[str]) -> list[dict[str, Any]]:
    found = []
    for name, address in email.utils.getaddresses(values):
        if not address:
            continue
        local, _, domain = address.rpartition("@")
        found.append({"display_name": _decoded(name) or None, "address": address,
                      "local": local or address, "domain": domain.lower() if local else None})
    return found


def parse_sample(sample: str) -> tuple[dict[str, Any], bool]:
    """The sample's main headers (parsedmarc's parsed_sample names) and whether it is headers only."""
    message = email.message_from_string(sample)
    from_ = _addresses(message.get_all("From") or [])
    date = parse_date(message.get("Date", "")) if message.get("Date") else None
    body = message.get_payload()
    headers_only = not message.is_multipart() and not str(body or "").strip()
    parsed = {
        "from": from_[0] if from_ else None,
        "to": _addresses(message.get_all("To") or []),
        "cc": _addresses(message.get_all("Cc") or []),
        "reply_to": _addresses(message.get_all("Reply-To") or []),
        "subject": _decoded(message.get("Subject")),
        "date": date.astimezone(UTC).isoformat(sep=" ") if date else None,
        "message_id": (message.get("Message-ID") or "").strip() or None,
    }
    return parsed, headers_only


def build_failure(feedback_text: str, sample: str, message_date: datetime | None) -> FailureReport:
    fields: dict[str, Any] = {}
    for match in FEEDBACK_FIELD.finditer(feedback_text):
        fields[match.group(1).lower().replace("-", "_")] = match.group(2)
    if "arrival_date" not in fields:
        if message_date is None:
            raise ReportError("failure report without Arrival-Date, in a message without a Date")
        fields["arrival_date"] = message_date.isoformat()
    fields.setdefault("version", None)
    fields.setdefault("user_agent", None)
    delivery = fields.get("delivery_result")
    if delivery is not None:
        delivery = next((word for word in DELIVERY_RESULTS if word in delivery.lower()), "other")
    fields["delivery_result"] = delivery or "other"
    arrival = parse_date(str(fields["arrival_date"]))
    if arrival is None:
        raise ReportError(f"failure report: Arrival-Date {str(fields['arrival_date'])[:60]!r} is not a date")
    if "source_ip" not in fields:
        raise ReportError("failure report without Source-IP")
    source_ip = re.split(r"\s", fields.pop("source_ip")).pop(0)
    alignment = fields.pop("identity_alignment", "none").strip()
    fields["authentication_mechanisms"] = [] if alignment.lower() == "none" else \
        [m.strip() for m in alignment.split(",") if m.strip()]
    fields["auth_failure"] = [f.strip() for f in str(fields.get("auth_failure", "dmarc")).split(",") if f.strip()]
    fields.setdefault("feedback_type", "auth-failure")
    fields.setdefault("authentication_results", None)
    for optional in ("original_envelope_id", "dkim_domain", "original_mail_from", "original_rcpt_to"):
        fields.setdefault(optional, None)
    parsed_sample, headers_only = parse_sample(sample)
    reported = fields.pop("reported_domain", None)
    if reported is None:
        sender = parsed_sample.get("from")
        reported = sender.get("domain") if isinstance(sender, dict) else None
        if not reported:
            raise ReportError("failure report without Reported-Domain, and its sample has no From domain")
    return FailureReport(fields, source_ip, arrival, str(reported), sample, headers_only, parsed_sample)
