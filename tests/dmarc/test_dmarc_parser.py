"""Bad input never crashes and never costs unbounded memory: every problem is a clear error."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import reportgen

from mailwarden.dmarc.aggregate import iter_aggregate, read_aggregate
from mailwarden.dmarc.extract import bytes_chunks
from mailwarden.dmarc.limits import Limits
from mailwarden.dmarc.parser import Failed, Found, materialise, parse_bytes
from mailwarden.dmarc.reports import AggregateHeader, AggregateReport, SmtpTlsReport
from mailwarden.errors import ReportError

XML = reportgen.aggregate_xml(5, seed=3)


DEFAULT = Limits()


def errors(raw: bytes, limits: Limits = DEFAULT) -> list[str]:
    return [item.error for item in materialise(parse_bytes(raw, limits)) if isinstance(item, Failed)]


def test_plain_gzip_and_zip_give_the_same_report() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("report.xml", XML)
    found = [materialise(parse_bytes(raw))[0] for raw in (XML, gzip.compress(XML), archive.getvalue())]
    assert all(isinstance(f, AggregateReport) for f in found)
    assert found[0].to_dict() == found[1].to_dict() == found[2].to_dict()  # type: ignore[union-attr]


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"<feedback>" + b" " * 50_000_000)
    assert errors(bomb, Limits(max_report_bytes=10_000_000)) == [
        "the gzip data expands to more than 10000000 bytes (limit max_report_bytes)"]


def test_a_zip_bomb_stops_at_the_limit() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("bomb.xml", b"<feedback>" + b" " * 50_000_000)
    [error] = errors(archive.getvalue(), Limits(max_report_bytes=10_000_000))
    assert "expands to more than 10000000 bytes (limit max_report_bytes)" in error


def test_too_many_archive_members_is_an_error() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for n in range(40):
            out.writestr(f"r{n}.xml", XML)
    assert errors(archive.getvalue()) == ["the zip archive holds 40 files, more than 32 (limit max_archive_members)"]


@pytest.mark.parametrize(("raw", "expected"), [
    (b"\x1f\x8bthis is not gzip at all", "invalid gzip data"),
    (gzip.compress(XML)[:-30], "truncated gzip data"),
    (b"PK\x03\x04 broken zip", "invalid zip archive"),
    (gzip.compress(b"hello there"), "the gzip data holds no XML or JSON report"),
    (b"", "empty input"),
    (b"\x00\x01\x02 binary", "not a report"),
    (b"<html><body>hi</body></html>", "not a DMARC aggregate report: the root element is <html>"),
    (XML.replace(b"<record>", b"<record><row>", 1), "invalid XML at line"),
    (XML.replace(b"example.com", b"exa\xffmple.com", 1), "invalid UTF-8 in the XML at line"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE feedback [<!ENTITY a "b">]><feedback/>', "the XML carries a DOCTYPE"),
    (XML.split(b"<record>")[0] + b"</feedback>", "the report has no <record>"),
    (XML.replace(b"<report_id>", b"<x>").replace(b"</report_id>", b"</x>"), "the report has no <report_id>"),
    (b'{"organization-name": "x"}', "SMTP TLS report: missing required field 'date-range'"),
    (b'{"organization-name": ', "SMTP TLS report: invalid JSON at line 1"),
])
def test_bad_input_is_a_clear_error(raw: bytes, expected: str) -> None:
    [error] = errors(raw)
    assert error.startswith(expected), error


def test_a_bad_record_is_skipped_and_named() -> None:
    raw = XML.replace(b"<source_ip>", b"<source_ip>not-an-ip", 1)
    report = materialise(parse_bytes(raw))[0]
    assert isinstance(report, AggregateReport) and len(report.records) == 4
    [warning] = report.header.warnings
    assert warning.startswith("record 1 skipped: <source_ip> 'not-an-ip") and warning.endswith("is not an IP address")


def test_records_before_the_metadata_are_still_read() -> None:
    head, _, rest = XML.partition(b"<report_metadata>")
    metadata, _, records = rest.partition(b"</policy_published>")
    reordered = head + records.replace(b"</feedback>", b"") + b"<report_metadata>" + metadata \
        + b"</policy_published></feedback>"
    assert read_aggregate([reordered]).to_dict() == read_aggregate([XML]).to_dict()


def test_a_large_report_is_streamed_in_bounded_memory() -> None:
    def peak(records: int) -> int:
        chunks = reportgen.iter_aggregate_xml(records, seed=9)
        tracemalloc.start()
        count = sum(1 for item in iter_aggregate(chunks) if not isinstance(item, AggregateHeader))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == records
        return top

    small, large = peak(2_000), peak(40_000)
    assert large < 2 * small + 2_000_000, (small, large)


def test_the_fast_json_is_the_same_as_json_dumps() -> None:
    report = read_aggregate(bytes_chunks(reportgen.aggregate_xml(300, seed=11, schema="rfc9990")))
    for record in report.records:
        assert record.to_json(("a", "b")) == json.dumps(record.to_dict(("a", "b")), ensure_ascii=False)
    odd = report.records[0]
    odd.header_from = 'quote"d\\ and ünïcode\n'
    assert json.loads(odd.to_json()) == odd.to_dict()


def test_an_email_with_two_reports_gives_both() -> None:
    import email.message

    message = email.message.EmailMessage()
    message["From"] = "reports@example.net"
    message["Subject"] = "two reports"
    message.set_content("see attached")
    message.add_attachment(gzip.compress(XML), maintype="application", subtype="gzip", filename="a.xml.gz")
    tls = (Path(__file__).resolve().parents[3] / "shared" / "corpora" / "dmarc" / "smtp_tls" / "rfc8460.json")
    if tls.exists():
        message.add_attachment(tls.read_bytes(), maintype="application", subtype="tlsrpt+json", filename="t.json")
    items = list(parse_bytes(message.as_bytes()))
    assert all(isinstance(i, Found) for i in items)
    found = materialise(iter(items))
    assert isinstance(found[0], AggregateReport)
    if tls.exists():
        assert isinstance(found[1], SmtpTlsReport)


def test_a_stream_error_after_the_header_is_a_report_error() -> None:
    truncated = XML[: len(XML) - 200]
    with pytest.raises(ReportError, match=r"invalid XML|truncated|no element"):
        list(iter_aggregate([truncated]))
