"""Every sample of ../shared/corpora/dmarc, and generated held-out reports, against parsedmarc's offline output.

Valid samples must be parsed and agree with parsedmarc field by field (report metadata, policy published,
each record's source IP, count, alignment, evaluated policy, identifiers and raw DKIM/SPF results; failure
reports' fields; SMTP TLS reports whole). Invalid ones must give a clear error. The intended differences
(README, "DMARC reports") are taken out here, each named.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reportgen

from mailwarden.dmarc.parser import Failed, materialise, parse_path
from mailwarden.dmarc.reports import AggregateReport, Report

parsedmarc = pytest.importorskip("parsedmarc")

# Samples parsedmarc reads with lxml's recovery mode, which drops what it cannot parse (here a whole
# header_from): we refuse them with the reason instead (intended difference 1).
INVALID = {
    "aggregate/invalid_xml.xml": "invalid XML at line 5",
    "aggregate/invalid_utf_8.xml": "invalid UTF-8 in the XML at line 31",
    "empty.xml": "empty input",
}


@pytest.fixture(autouse=True, scope="module")
def _utc() -> Iterator[None]:
    """parsedmarc writes times in the local zone, we in UTC: compare with the process in UTC."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    logging.getLogger("parsedmarc").setLevel(logging.CRITICAL)
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def theirs(path: Path) -> dict[str, Any]:
    # offline: no DNS and no downloads; no splitting of reports longer than a day (intended difference 3)
    result: dict[str, Any] = parsedmarc.parse_report_file(str(path), offline=True,
                                                          normalize_timespan_threshold_hours=1e9)
    return result


def comparable(kind: str, report: dict[str, Any]) -> dict[str, Any]:
    """The fields both tools produce for the same concept (see the README for what is left out and why)."""
    report = dict(report)
    if kind == "aggregate":
        metadata = dict(report["report_metadata"])
        metadata.pop("timespan_requires_normalization")  # ours says whether a report spans over 24 hours
        metadata["errors"] = [e for e in metadata["errors"] if not e.startswith("Invalid XML:")]  # their recovery
        report["report_metadata"] = metadata
        report.pop("warnings", None)
        report["records"] = [{**r, "source": {"ip_address": r["source"]["ip_address"]}} for r in report["records"]]
    elif kind == "failure":
        sample = report.pop("parsed_sample")
        report.pop("sample")
        report["source"] = {"ip_address": report["source"]["ip_address"]}
        report["sample_from"] = sample["from"]["address"] if sample.get("from") else None
        report["sample_to"] = [t["address"] for t in sample.get("to") or []]
        report["sample_subject"] = sample.get("subject")
    return report


def mine(path: Path) -> list[Report | Failed]:
    return materialise(parse_path(path))


def samples() -> list[str]:
    root = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "dmarc"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", samples())
def test_sample_agrees_with_parsedmarc_or_is_refused_clearly(name: str, corpus: Path) -> None:
    path = corpus / name
    found = mine(path)
    assert len(found) == 1, found
    if name in INVALID:
        assert isinstance(found[0], Failed)
        assert found[0].error.startswith(INVALID[name]), found[0].error
        return
    assert not isinstance(found[0], Failed), found[0]
    expected = theirs(path)
    assert found[0].report_type == expected["report_type"]
    assert comparable(found[0].report_type, found[0].to_dict()) == comparable(expected["report_type"],
                                                                              expected["report"])


def test_every_record_of_the_large_sample_agrees(corpus: Path) -> None:
    path = corpus / "aggregate" / "!large-example.com!1711897200!1711983600.xml"
    report = mine(path)[0]
    assert isinstance(report, AggregateReport) and len(report.records) == 2286
    assert comparable("aggregate", report.to_dict()) == comparable("aggregate", theirs(path)["report"])


@pytest.mark.parametrize("schema", ["rfc7489", "rfc9990"])
@pytest.mark.parametrize("kind", ["xml", "gz", "zip"])
def test_held_out_generated_reports_agree(schema: str, kind: str, tmp_path: Path) -> None:
    for n, reporter in enumerate(reportgen.HELD_OUT_REPORTERS):
        pieces = reportgen.iter_aggregate_xml(40 + n, seed=100 + n, schema=schema, reporter=reporter,
                                              domain=f"held{n}.example.org")
        path = reportgen.write_report(tmp_path, f"{schema}-{n}", pieces, kind)
        found = mine(path)
        assert len(found) == 1 and isinstance(found[0], AggregateReport), found
        assert comparable("aggregate", found[0].to_dict()) == comparable("aggregate", theirs(path)["report"])


def test_a_report_attached_to_an_email_agrees(tmp_path: Path) -> None:
    import email.message

    message = email.message.EmailMessage()
    message["From"] = "noreply-dmarc@reporter.example"
    message["To"] = "dmarc@example.com"
    message["Subject"] = "Report domain: example.com"
    message["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    message.set_content("Aggregate report attached.")
    xml = reportgen.aggregate_xml(12, seed=5, schema="rfc9990", reporter="Zoho Mail")
    import gzip

    message.add_attachment(gzip.compress(xml), maintype="application", subtype="gzip", filename="r.xml.gz")
    path = tmp_path / "report.eml"
    path.write_bytes(message.as_bytes())
    found = mine(path)
    assert len(found) == 1 and isinstance(found[0], AggregateReport)
    assert comparable("aggregate", found[0].to_dict()) == comparable("aggregate", theirs(path)["report"])
