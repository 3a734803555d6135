"""DMARC aggregate reports (RFC 7489 appendix C and the RFC 9990 / DMARCbis schema), streamed.

    for item in iter_aggregate(chunks):      # chunks: an iterator of bytes (a file, gzip, zip member...)
        AggregateHeader  once, before the first record (metadata and policy published)
        AggregateRecord  one per <record>

The XML is fed to expat a chunk at a time and every ``<record>`` is dropped from the tree once read,
so memory stays bounded however many records a report has. Invalid XML, bad UTF-8 and a DOCTYPE
(reports never carry one; an internal subset can blow up attribute defaults) raise ``ReportError``
naming the line and column. A record that lacks what the schema requires (row, source_ip, count,
policy_evaluated dkim/spf, identifiers/header_from, auth_results) is skipped and named in the
header's ``warnings``, as parsedmarc skips it; values are read as parsedmarc reads them (see
``reports``): result words lower-cased, envelope_from taken from the last SPF result when missing,
the reporter's organisation reduced to its registrable domain when it is a domain name.
"""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from mailwarden.dmarc.limits import DEFAULT_LIMITS, Limits
from mailwarden.dmarc.reports import (
    AggregateHeader,
    AggregateRecord,
    AggregateReport,
    DkimAuthResult,
    OverrideReason,
    PolicyPublished,
    ReportMetadata,
    SpfAuthResult,
)
from mailwarden.errors import ReportError

RFC_9990_NAMESPACE = "urn:ietf:params:xml:ns:dmarc-2.0"
_DOCTYPE = b"<!DOCTYPE"


class _Skip(Exception):
    """A record that cannot be read; it is left out and named in the warnings."""


@cache
def _suffix_list(tld: str) -> Any:
    """The public suffix list (private section included), or only its rules under ``tld``: the answers are
    the same for names under that TLD, and reading one TLD's rules takes a few milliseconds, not the 30 it
    takes to load every rule (as long as a ``dmarc parse`` of a hundred small reports takes).
    """
    from publicsuffixlist import PSLFILE, PublicSuffixList

    if not tld or not tld.isascii() or tld.startswith("xn--") or not tld.replace("-", "").isalnum():
        return PublicSuffixList()
    text = Path(PSLFILE).read_text(encoding="utf-8")
    rules = re.findall(rf"^(?:\S*\.)?{re.escape(tld)}(?:[ \t][^\n]*)?$", text, re.MULTILINE | re.IGNORECASE)
    return PublicSuffixList(source=[r for r in rules if not r.startswith("//")])


def reporter_name(org_name: str) -> str:
    """parsedmarc's org_name: a domain name becomes its registrable domain, anything else stays."""
    if " " in org_name:
        return org_name
    if org_name.count(".") == 1 and org_name == org_name.lower():
        return org_name  # two labels: its own registrable domain, or a public suffix kept as written
    name = org_name.lower()
    base = _suffix_list(name.rstrip(".").rpartition(".")[2]).privatesuffix(name)
    return str(base) if base else org_name


_LOCAL_NAMES: dict[str, str] = {}


def _local(tag: Any) -> str:
    """``{namespace}name`` -> ``name`` (cached: a report repeats a few dozen tags); "" for a non-element."""
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        if not isinstance(tag, str):
            return ""
        name = tag.rpartition("}")[2] if tag[:1] == "{" else tag
        if len(_LOCAL_NAMES) < 4096:
            _LOCAL_NAMES[tag] = name
    return name


def _text(element: Any) -> str | None:
    """The element's text with surrounding space removed; None when empty (as xmltodict reads it)."""
    if element is None:
        return None
    text = element.text
    if text is None:
        return None
    text = text.strip()
    return text or None


def _lower(element: Any) -> str | None:
    text = _text(element)
    return text.lower() if text is not None else None


def _first_children(element: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for child in element:
        found.setdefault(_local(child.tag), child)
    return found


def _is_ip(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except (OSError, ValueError):
        return False
    return True


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def read_record(record: Any) -> AggregateRecord:
    """One ``<record>``; raises _Skip with the reason when it lacks what the schema requires.

    One pass over the record's elements in document order (this is the hot loop of a large report);
    an element counts only under the parent the schema puts it under, and the first of a kind wins.
    """
    local = _LOCAL_NAMES
    row = evaluated = auth = reason = entry = None
    identifiers: list[Any] = [None, None]  # <identifiers>, and <identities> of early drafts (which wins)
    ids: list[dict[str, str | None]] = [{}, {}]
    row_values: dict[str, str | None] = {}
    evaluated_values: dict[str, str | None] = {}
    reasons: list[dict[str, str | None]] = []
    entries: list[tuple[str, dict[str, str | None]]] = []  # ("dkim"|"spf", values) of <auth_results>
    values: dict[str, str | None] = {}
    iterator = record.iter()
    next(iterator)
    for element in iterator:
        tag = element.tag
        name = local.get(tag)
        if name is None:
            name = _local(tag)
        parent = element.getparent()
        if parent is record:
            if name == "row":
                row = row if row is not None else element
            elif name == "identifiers":
                identifiers[0] = identifiers[0] if identifiers[0] is not None else element
            elif name == "auth_results":
                auth = auth if auth is not None else element
            elif name == "identities":
                identifiers[1] = identifiers[1] if identifiers[1] is not None else element
        elif parent is row:
            if name == "policy_evaluated":
                evaluated = evaluated if evaluated is not None else element
            elif name not in row_values:
                row_values[name] = _clean(element.text)
        elif parent is evaluated:
            if name == "reason":
                reason = element
                reasons.append({})
            elif name not in evaluated_values:
                text = _clean(element.text)
                evaluated_values[name] = text.lower() if text is not None else None
        elif parent is auth:
            if name in ("dkim", "spf"):
                entry = element
                values = {}
                entries.append((name, values))
        elif parent is entry:
            if name not in values:
                text = _clean(element.text)
                values[name] = text.lower() if name == "result" and text is not None else text
        elif parent is reason:
            if name not in reasons[-1]:
                reasons[-1][name] = _clean(element.text)
        elif parent is identifiers[0] or parent is identifiers[1]:
            chosen = ids[0] if parent is identifiers[0] else ids[1]
            if name not in chosen:
                chosen[name] = _clean(element.text)
    if row is None:
        raise _Skip("no <row>")
    source_ip = row_values.get("source_ip")
    if source_ip is None:
        raise _Skip("empty <source_ip>")
    source_ip = source_ip.lower()
    if not _is_ip(source_ip):
        raise _Skip(f"<source_ip> {source_ip[:60]!r} is not an IP address")
    count_text = row_values.get("count")
    try:
        count = int(count_text or "")
    except ValueError:
        raise _Skip(f"<count> {str(count_text)[:30]!r} is not a number") from None
    if evaluated is None:
        raise _Skip("no <policy_evaluated>")
    if "dkim" not in evaluated_values or "spf" not in evaluated_values:
        raise _Skip("<policy_evaluated> without <dkim> and <spf>")
    chosen_ids = ids[1] if identifiers[1] is not None else ids[0]
    if identifiers[0] is None and identifiers[1] is None:
        raise _Skip("no <identifiers>")
    if "header_from" not in chosen_ids:
        raise _Skip("no <header_from>")
    if auth is None:
        raise _Skip("no <auth_results>")
    envelope_from = chosen_ids.get("envelope_from")
    dkim_results: list[DkimAuthResult] = []
    spf_results: list[SpfAuthResult] = []
    last_spf: dict[str, str | None] | None = None
    for kind, found in entries:
        domain = found.get("domain")
        if kind == "spf":
            last_spf = found
            if domain is not None:
                spf_results.append(SpfAuthResult(domain, found.get("scope") or "mfrom", found.get("result") or "none",
                                                 found.get("human_result")))
        elif domain is not None:
            dkim_results.append(DkimAuthResult(domain, found.get("selector") or "none", found.get("result") or "none",
                                               found.get("human_result")))
    if envelope_from is None and last_spf is not None and last_spf.get("domain") is not None:
        envelope_from = str(last_spf["domain"]).lower()
    return AggregateRecord(
        source_ip, count, evaluated_values.get("disposition", "none"), evaluated_values["dkim"],
        evaluated_values["spf"], tuple(OverrideReason(r.get("type"), r.get("comment")) for r in reasons),
        (chosen_ids["header_from"] or "").lower(), envelope_from, chosen_ids.get("envelope_to"),
        tuple(dkim_results), tuple(spf_results))


def _timestamp(text: str | None, what: str) -> datetime:
    try:
        return datetime.fromtimestamp(int((text or "").split(".")[0]), UTC)
    except (ValueError, OverflowError, OSError):
        raise ReportError(f"<date_range> <{what}> {str(text)[:40]!r} is not a Unix time") from None


def read_metadata(element: Any) -> ReportMetadata:
    parts = _first_children(element)
    email = _text(parts.get("email"))
    org_name = _text(parts.get("org_name"))
    if org_name is None and email is not None:
        org_name = email.split("@")[-1]
    if org_name:
        org_name = reporter_name(org_name)
    if not org_name:
        raise ReportError("the report names no reporting organisation (<org_name> and <email> are empty)")
    report_id = _text(parts.get("report_id"))
    if report_id is None:
        raise ReportError("the report has no <report_id>")
    report_id = report_id.replace("<", "").replace(">", "").split("@")[0]
    date_range = parts.get("date_range")
    if date_range is None:
        raise ReportError("the report has no <date_range>")
    dates = _first_children(date_range)
    begin, end = _timestamp(_text(dates.get("begin")), "begin"), _timestamp(_text(dates.get("end")), "end")
    errors = tuple(text for child in element if _local(child.tag) == "error" and (text := _text(child)))
    return ReportMetadata(org_name, email, _text(parts.get("extra_contact_info")), report_id, begin, end, errors,
                          _text(parts.get("generator")))


def read_policy(element: Any) -> PolicyPublished:
    parts = _first_children(element)
    domain = _text(parts.get("domain"))
    if domain is None:
        raise ReportError("<policy_published> has no <domain>")
    if "p" not in parts:
        raise ReportError("<policy_published> has no <p>")
    p = _text(parts["p"])
    return PolicyPublished(
        domain=domain, p=p, sp=_text(parts.get("sp")) or p, adkim=_text(parts.get("adkim")) or "r",
        aspf=_text(parts.get("aspf")) or "r", pct=_text(parts.get("pct")), fo=_text(parts.get("fo")),
        np=_text(parts.get("np")), testing=_text(parts.get("testing")),
        discovery_method=_text(parts.get("discovery_method")))


def _position_error(exc: Exception, chunk: bytes, offset: int) -> ReportError:
    line, column = getattr(exc, "position", None) or (0, 0)
    reason = str(getattr(exc, "msg", "") or exc).split(", line ", 1)[0]
    if "encoding" in reason or "UTF-8" in reason or "invalid token" in reason:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as bad:
            if bad.reason != "unexpected end of data":
                return ReportError(f"invalid UTF-8 in the XML at line {line}, column {column} "
                                   f"(byte 0x{chunk[bad.start]:02x} at offset {offset + bad.start})")
    return ReportError(f"invalid XML at line {line}, column {column}: {reason}")


_EVENT_TAGS = ("{*}feedback", "{*}record", "{*}report_metadata", "{*}policy_published", "{*}version")


def _new_parser() -> Any:
    from lxml import etree

    # No entity is resolved, nothing is fetched, comments and processing instructions are dropped, and
    # libxml2's own bounds on depth and text size stay on (huge_tree=False).
    return etree.XMLPullParser(events=("start", "end", "start-ns"), tag=_EVENT_TAGS, resolve_entities=False,
                               no_network=True, load_dtd=False, huge_tree=False, remove_comments=True,
                               remove_pis=True)


def iter_aggregate(chunks: Iterable[bytes],
                   limits: Limits = DEFAULT_LIMITS) -> Iterator[AggregateHeader | AggregateRecord]:
    """The header, then every record, of the aggregate report whose XML arrives in ``chunks``.

    A report that arrives in one chunk (up to ``limits.chunk_bytes``: most reports) is parsed whole, which
    saves the pull parser's work per record; anything unusual about it (invalid XML, a DOCTYPE, junk after
    the report, namespaces declared below the root, a wrapper) is left to the streaming reader, which also
    gives the errors. Both read the same report the same way.
    """
    iterator = iter(chunks)
    first = b""
    for first in iterator:
        if first:
            break
    second = next(iterator, None)
    if second is None and first:
        whole = _read_whole(first, limits)
        if whole is not None:
            yield from whole
            return
    yield from _iter_streamed(itertools.chain((first,), () if second is None else (second,), iterator), limits)


def _read_whole(data: bytes, limits: Limits) -> list[AggregateHeader | AggregateRecord] | None:
    """A small report read from its tree at once, or None when the streaming reader must judge it."""
    from lxml import etree

    data = data.lstrip(b" \t\r\n")
    if _DOCTYPE in data or data.count(b"xmlns") > 1:
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)  # one per call: parsers are not thread-safe
    try:
        root = etree.fromstring(data, parser)
    except etree.LxmlError:
        return None
    if not isinstance(root.tag, str) or _local(root.tag) != "feedback" or len(root.nsmap) != data.count(b"xmlns"):
        return None
    namespace = next(iter(root.nsmap.values()), None)
    schema: str | None = "draft"
    metadata: ReportMetadata | None = None
    policy: PolicyPublished | None = None
    header: AggregateHeader | None = None
    warnings: list[str] = []
    items: list[AggregateHeader | AggregateRecord] = []
    pending: list[AggregateRecord] = []
    records = 0
    local = _LOCAL_NAMES
    for element in root:
        tag = element.tag
        name = local.get(tag) or _local(tag)
        if name == "record":
            if header is None and metadata is not None and policy is not None:
                header = AggregateHeader(schema, namespace, metadata, policy, warnings)
                items.append(header)
            records += 1
            if records > limits.max_records:
                raise ReportError(f"more than {limits.max_records} records (limit max_records)")
            try:
                record = read_record(element)
            except _Skip as skip:
                warnings.append(f"record {records} skipped: {skip}")
                continue
            if header is not None:
                items.append(record)
            else:
                pending.append(record)
                if len(pending) > limits.max_records_before_metadata:
                    raise ReportError(f"more than {limits.max_records_before_metadata} records before "
                                      f"<report_metadata> (limit max_records_before_metadata)")
        elif name == "report_metadata" and metadata is None:
            metadata = read_metadata(element)
        elif name == "policy_published" and policy is None:
            policy = read_policy(element)
        elif name == "version" and header is None:
            schema = _text(element)
    if records == 0:
        raise ReportError("the report has no <record>")
    if header is None:
        if metadata is None:
            raise ReportError("the report has no <report_metadata>")
        if policy is None:
            raise ReportError("the report has no <policy_published>")
        items.append(AggregateHeader(schema, namespace, metadata, policy, warnings))
        items.extend(pending)
    return items


def _iter_streamed(chunks: Iterable[bytes], limits: Limits) -> Iterator[AggregateHeader | AggregateRecord]:
    from lxml import etree

    parser = _new_parser()
    container: Any = None  # <feedback>: the root, or the child of an <xs:schema> wrapper
    namespace: str | None = None
    schema: str | None = "draft"
    metadata: ReportMetadata | None = None
    policy: PolicyPublished | None = None
    header: AggregateHeader | None = None
    pending: list[AggregateRecord] = []  # records seen before the metadata (not the schema's order)
    warnings: list[str] = []
    records = 0
    offset = 0
    prolog = b""
    first = True
    complete = False
    chunk = b""

    def make_header() -> AggregateHeader:
        if metadata is None:
            raise ReportError("the report has no <report_metadata>")
        if policy is None:
            raise ReportError("the report has no <policy_published>")
        return AggregateHeader(schema, namespace, metadata, policy, warnings)  # warnings may still grow

    try:
        for chunk in chunks:
            if not chunk:
                continue
            if first:
                chunk = chunk.lstrip(b" \t\r\n")  # a declaration must come first; some reporters indent it
                first = not chunk
            if container is None:
                prolog = (prolog + chunk)[-65536:]
                if _DOCTYPE in prolog:
                    raise ReportError("the XML carries a DOCTYPE declaration, which reports never do")
            parser.feed(chunk)
            for event, element in parser.read_events():
                if event == "start-ns":
                    if namespace is None:
                        namespace = element[1]
                    continue
                tag = _local(element.tag)
                if event == "start":
                    if tag == "feedback":
                        if container is None:
                            parent = element.getparent()
                            if parent is None or (_local(parent.tag) == "schema" and parent.getparent() is None):
                                container = element  # some reporters wrap the report in <xs:schema>
                    elif tag == "record" and header is None and metadata is not None and policy is not None:
                        header = make_header()
                        yield header
                    continue
                if element is container:
                    complete = True  # whatever follows </feedback> (an unclosed wrapper, junk) is not read
                    break
                if container is None or element.getparent() is not container:
                    continue
                if tag == "record":
                    records += 1
                    if records > limits.max_records:
                        raise ReportError(f"more than {limits.max_records} records (limit max_records)")
                    try:
                        record: AggregateRecord | None = read_record(element)
                    except _Skip as skip:
                        warnings.append(f"record {records} skipped: {skip}")
                        record = None
                    element.clear()
                    container.remove(element)
                    if record is None:
                        continue
                    if header is not None:
                        yield record
                    else:
                        pending.append(record)
                        if len(pending) > limits.max_records_before_metadata:
                            raise ReportError(f"more than {limits.max_records_before_metadata} records before "
                                              f"<report_metadata> (limit max_records_before_metadata)")
                    continue
                if tag == "report_metadata" and metadata is None:
                    metadata = read_metadata(element)
                elif tag == "policy_published" and policy is None:
                    policy = read_policy(element)
                elif tag == "version" and header is None:
                    schema = _text(element)
                container.remove(element)
            if complete:
                break
            offset += len(chunk)
        root = None
        if not complete:
            root = parser.close()
    except etree.XMLSyntaxError as exc:
        if not complete:
            if container is None and offset == 0 and not chunk.strip():
                raise ReportError("empty XML: no root element") from None
            raise _position_error(exc, chunk, offset) from None
        root = None
    except etree.LxmlError as exc:
        raise ReportError(f"invalid XML: {exc}") from None
    if container is None:
        name = _local(root.tag) if root is not None and isinstance(root.tag, str) else ""
        raise ReportError("not a DMARC aggregate report: " + (f"the root element is <{name[:40]}>, not <feedback>"
                                                              if name else "no <feedback> element"))
    if records == 0:
        raise ReportError("the report has no <record>")
    if header is None:
        header = make_header()
        yield header
        yield from pending


def collect(items: Iterable[AggregateHeader | AggregateRecord]) -> AggregateReport:
    """A whole report from iter_aggregate's items (small reports and tests; large ones are streamed)."""
    header: AggregateHeader | None = None
    records: list[AggregateRecord] = []
    for item in items:
        if isinstance(item, AggregateHeader):
            header = item
        else:
            records.append(item)
    if header is None:
        raise ReportError("the report has no <report_metadata>")
    return AggregateReport(header, tuple(records))


def read_aggregate(chunks: Iterable[bytes], limits: Limits = DEFAULT_LIMITS) -> AggregateReport:
    return collect(iter_aggregate(chunks, limits))
