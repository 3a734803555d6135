"""Every report in some input: a file, or raw bytes (an uploaded file, a message the gateway took in).

    for item in parse_path(path):   # or parse_bytes(raw)
        Found(part, "aggregate", stream=...)     iterate ``stream`` (header, then records) before the next
                                                 item; it raises ReportError if the XML turns out bad
        Found(part, "failure" | "smtp_tls", report=...)
        Failed(part, error)                      this part holds no readable report, and why

Input may be aggregate XML, SMTP TLS JSON, gzip or zip of either, or an email carrying any of those as
attachments, an ARF failure report, a plain-text failure report or a forwarded report email. ``part``
says where in the input a report was ("" for the input itself, else attachment and member names).
Nothing here raises on bad input: each problem is a ``Failed`` item (or a ReportError from a stream).
"""

from __future__ import annotations

import base64
import binascii
import quopri
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mailwarden.dmarc import extract
from mailwarden.dmarc.aggregate import collect, iter_aggregate
from mailwarden.dmarc.limits import DEFAULT_LIMITS, Limits
from mailwarden.dmarc.reports import AggregateHeader, AggregateRecord, FailureReport, Report, ReportType, SmtpTlsReport
from mailwarden.dmarc.tls import parse_tls_json
from mailwarden.errors import ReportError

if TYPE_CHECKING:
    import email.message

MAX_EMAIL_DEPTH = 3  # a report email forwarded inside a report email, at most this deep
TLS_TYPES = ("application/tlsrpt+json", "application/tlsrpt+gzip")


@dataclass
class Found:
    part: str
    report_type: ReportType
    report: FailureReport | SmtpTlsReport | None = None
    stream: Iterator[AggregateHeader | AggregateRecord] | None = None


@dataclass(frozen=True)
class Failed:
    part: str
    error: str


Item = Found | Failed


def parse_path(path: Path, limits: Limits = DEFAULT_LIMITS) -> Iterator[Item]:
    """The reports in a file; plain XML is streamed from disk, whatever its size."""
    try:
        head, chunks = extract.peek(extract.file_chunks(path, limits.chunk_bytes))
    except ReportError as exc:
        yield Failed("", str(exc))
        return
    yield from _payload(head, chunks, "", limits, 0)


def parse_bytes(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Iterator[Item]:
    head, chunks = extract.peek(extract.bytes_chunks(raw, limits.chunk_bytes))
    yield from _payload(head, chunks, "", limits, 0)


def _join(part: str, name: str) -> str:
    return f"{part}/{name}" if part else name


def _payload(head: bytes, chunks: Iterator[bytes], part: str, limits: Limits, depth: int,
             nested: bool = False) -> Iterator[Item]:
    kind = extract.sniff(head)
    try:
        if kind == "xml":
            yield Found(part, "aggregate",
                        stream=iter_aggregate(extract.bounded(chunks, limits.max_report_bytes, "the report"), limits))
        elif kind == "json":
            yield Found(part, "smtp_tls", report=parse_tls_json(
                extract.read_all(chunks, limits.max_json_bytes, "the JSON report")))
        elif kind == "gzip" and not nested:
            inner_head, inner = extract.peek(extract.gunzip(chunks, limits.max_report_bytes, limits.chunk_bytes))
            if extract.sniff(inner_head) not in ("xml", "json"):
                yield Failed(part, "the gzip data holds no XML or JSON report: "
                             + extract.describe(inner_head))
                return
            yield from _payload(inner_head, inner, part, limits, depth, nested=True)
        elif kind == "zip" and not nested:
            data = extract.read_all(chunks, limits.max_message_bytes, "the message")
            for name, member in extract.zip_members(data, limits):
                try:
                    member_head, member_chunks = extract.peek(member)
                except ReportError as exc:
                    yield Failed(_join(part, name), str(exc))
                    continue
                if extract.sniff(member_head) not in ("xml", "json"):
                    yield Failed(_join(part, name), "no XML or JSON report in this archive member: "
                                 + extract.describe(member_head))
                    continue
                yield from _payload(member_head, member_chunks, _join(part, name), limits, depth, nested=True)
        elif kind == "email" and not nested and depth < MAX_EMAIL_DEPTH:
            raw = extract.read_all(chunks, limits.max_message_bytes, "the message")
            yield from _email(raw, part, limits, depth)
        elif kind in ("gzip", "zip"):
            yield Failed(part, f"a {kind} file inside a compressed file is not read")
        else:
            yield Failed(part, extract.describe(head))
    except ReportError as exc:
        yield Failed(part, str(exc))


# --- email (the email package and failure reports are imported only when an email comes) ---------------

def _leaves(message: email.message.Message, limits: Limits) -> Iterator[email.message.Message]:
    """Non-multipart parts in order; message/* parts are leaves (a sample is not walked into)."""
    import email.message

    stack = [message]
    seen = 0
    while stack:
        part = stack.pop()
        seen += 1
        if seen > limits.max_parts:
            return
        if part.get_content_maintype() == "multipart":
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(reversed([c for c in children if isinstance(c, email.message.Message)]))
            continue
        yield part


def _part_text(part: email.message.Message) -> str:
    """A part's text with its transfer encoding undone (message/* parts included, as sent)."""
    import email.errors
    import email.message

    payload = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if isinstance(payload, list):  # message/*: the email package parsed it as a message
        try:
            text = payload[0].as_string() if payload and isinstance(payload[0], email.message.Message) else ""
        except (LookupError, ValueError, UnicodeError, email.errors.MessageError, RecursionError):
            text = ""
        try:
            if encoding == "base64":
                return base64.b64decode(text).decode("utf-8", "replace")
            if encoding == "quoted-printable":
                return quopri.decodestring(text.encode("utf-8", "replace")).decode("utf-8", "replace")
        except (ValueError, binascii.Error):
            return text
        return text
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(payload or "")
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _part_bytes(part: email.message.Message) -> bytes:
    import email.errors
    import email.message

    payload = part.get_payload()
    if isinstance(payload, list):
        try:
            return payload[0].as_bytes() if payload and isinstance(payload[0], email.message.Message) else b""
        except (LookupError, ValueError, UnicodeError, email.errors.MessageError, RecursionError):
            return b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _name(part: email.message.Message, index: int) -> str:
    try:
        name = part.get_filename()
    except (LookupError, ValueError, UnicodeError):
        name = None
    return str(name) if name else f"part{index}"


def _message_date(message: email.message.Message) -> datetime | None:
    from mailwarden.dmarc.failure import parse_date

    value = message.get("Date")
    return parse_date(str(value)) if value else None


def _email(raw: bytes, part: str, limits: Limits, depth: int) -> Iterator[Item]:
    import email

    from mailwarden.dmarc.failure import SAMPLE_TYPES, build_failure, plain_text_failure

    message = email.message_from_bytes(raw)
    feedback: str | None = None
    sample: str | None = None
    found = 0
    failures: list[Failed] = []
    for index, leaf in enumerate(_leaves(message, limits)):
        ctype = leaf.get_content_type()
        where = _join(part, _name(leaf, index))
        if ctype == "message/feedback-report":
            feedback = _part_text(leaf)
        elif feedback is not None and sample is None and ctype in SAMPLE_TYPES:
            sample = _part_text(leaf)
        elif ctype == "text/html":
            continue
        elif ctype == "text/plain":
            try:
                plain = plain_text_failure(_part_text(leaf))
            except ReportError as exc:
                failures.append(Failed(where, str(exc)))
                continue
            if plain is not None and feedback is None:
                feedback, sample = plain
        elif ctype == "message/rfc822" and feedback is None:
            for item in _payload(*extract.peek(iter([_part_bytes(leaf)])), where, limits, depth + 1):
                if isinstance(item, Found):
                    found += 1
                    yield item
                # a forwarded message that is not a report is just a message, not an error
        else:
            data = _part_bytes(leaf)
            head = data[: extract.SNIFF_BYTES]
            kind = extract.sniff(head)
            if kind in ("zip", "gzip", "xml", "json") or ctype in TLS_TYPES:
                for item in _payload(head, extract.bytes_chunks(data, limits.chunk_bytes), where, limits, depth + 1):
                    if isinstance(item, Found):
                        found += 1
                        yield item
                    else:
                        failures.append(item)
    if feedback is not None and sample is not None:
        try:
            yield Found(part, "failure", report=build_failure(feedback, sample, _message_date(message)))
            found += 1
        except ReportError as exc:
            failures.append(Failed(part, f"invalid failure report: {exc}"))
    elif feedback is not None:
        failures.append(Failed(part, "failure report without a sample of the failed message"))
    if found == 0 and not failures:
        subject = str(message.get("Subject", ""))[:80]
        failures.append(Failed(part, f"no report in this email (subject {subject!r})"))
    yield from failures


# --- whole reports (tests, small inputs) ---------------------------------------------------------------

def materialise(items: Iterable[Item]) -> list[Report | Failed]:
    """Every item as a whole report or a failure (aggregate streams read into memory)."""
    out: list[Report | Failed] = []
    for item in items:
        if isinstance(item, Failed):
            out.append(item)
        elif item.stream is not None:
            try:
                out.append(collect(item.stream))
            except ReportError as exc:
                out.append(Failed(item.part, str(exc)))
        elif item.report is not None:
            out.append(item.report)
    return out

