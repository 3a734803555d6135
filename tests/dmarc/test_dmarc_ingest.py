"""Storing reports: idempotent, transactional (SIGKILL mid-way), bad input kept aside; queries and alerts.

Runs on SQLite and on PostgreSQL (the ``database_url`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import reportgen
from sqlalchemy import func, select
from typer.testing import CliRunner

from mailwarden.cli import app
from mailwarden.config import Settings
from mailwarden.dmarc import queries
from mailwarden.dmarc.alerts import table
from mailwarden.dmarc.ingest import DmarcIngest, ingest_bytes

runner = CliRunner()


def settings_for(database_url: str, tmp_path: Path) -> Settings:
    return Settings(tmp_path / "data", database_url)


def count(ingest: DmarcIngest, name: str) -> int:
    with ingest.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table(name))) or 0)


def report_xml(report_id: str, records: list[tuple[str, int, bool, bool]], *, domain: str = "acme.example",
               org: str = "reporter.example", begin: int = 1_780_000_000, schema: str = "rfc7489") -> bytes:
    """records: (source ip, count, dkim aligned pass, spf aligned pass)."""
    namespace = ' xmlns="urn:ietf:params:xml:ns:dmarc-2.0"' if schema == "rfc9990" else ""
    rows = []
    for ip, n, dkim, spf in records:
        passing = dkim or spf
        rows.append(
            f"<record><row><source_ip>{ip}</source_ip><count>{n}</count><policy_evaluated>"
            f"<disposition>{'none' if passing else 'reject'}</disposition><dkim>{'pass' if dkim else 'fail'}</dkim>"
            f"<spf>{'pass' if spf else 'fail'}</spf></policy_evaluated></row><identifiers>"
            f"<header_from>{domain}</header_from></identifiers><auth_results>"
            + (f"<dkim><domain>{domain}</domain><selector>s1</selector><result>pass</result></dkim>" if dkim else "")
            + f"<spf><domain>{domain if spf else 'evil.example'}</domain><result>{'pass' if spf else 'fail'}</result>"
            f"</spf></auth_results></record>")
    return (f'<?xml version="1.0"?><feedback{namespace}><report_metadata><org_name>{org}</org_name>'
            f"<email>dmarc@{org}</email><report_id>{report_id}</report_id><date_range><begin>{begin}</begin>"
            f"<end>{begin + 86399}</end></date_range></report_metadata><policy_published><domain>{domain}</domain>"
            f"<p>reject</p></policy_published>{''.join(rows)}</feedback>").encode()


def test_the_corpus_twice_stores_each_report_once(database_url: str, tmp_path: Path, corpus: Path) -> None:
    with DmarcIngest.open(settings_for(database_url, tmp_path)) as ingest:
        files = sorted(p for p in corpus.rglob("*") if p.is_file())
        first = [ingest.ingest_file(p) for p in files]
        counts = {name: count(ingest, name) for name in ("dmarc_reports", "dmarc_records", "dmarc_failure_reports",
                                                         "dmarc_tls_reports", "dmarc_alerts", "dmarc_indicators")}
        second = [ingest.ingest_file(p) for p in files]
        assert {name: count(ingest, name) for name in counts} == counts
    assert sum(r.stored for r in first) == 28 and sum(r.stored for r in second) == 0
    assert counts["dmarc_reports"] == 20  # nice-input.xml, .gz and .zip are one report
    assert counts["dmarc_failure_reports"] == 4  # the CRLF copy of the LinkedIn report is the same report
    assert counts["dmarc_tls_reports"] == 4
    assert counts["dmarc_records"] == sum(r.records for res in first for r in res.reports
                                          if r.report_type == "aggregate")
    bad = [r for r in first if r.errors]
    assert sorted(Path(r.source).name for r in bad) == ["empty.xml", "invalid_utf_8.xml", "invalid_xml.xml"]
    for result in bad:
        assert result.kept_aside is not None and result.kept_aside.exists()
        note = json.loads(result.kept_aside.with_name(result.kept_aside.name + ".error.json").read_text())
        assert note["errors"][0]["error"] == result.errors[0].error


def test_ingest_bytes_is_what_the_gateway_calls(database_url: str, tmp_path: Path, corpus: Path) -> None:
    raw = (corpus / "aggregate" / "twilight.eml").read_bytes()
    settings = settings_for(database_url, tmp_path)
    result = ingest_bytes(raw, "gateway:dmarc-reports@acme.example", settings)
    assert (result.stored, result.ok) == (1, True)
    assert result.reports[0].key.startswith("google.com ") and result.reports[0].key.endswith(" twlnet.com")
    again = ingest_bytes(raw, "gateway", settings)
    assert (again.stored, again.duplicates) == (0, 1)
    junk = ingest_bytes(b"From: x@y.example\r\nSubject: hi\r\n\r\nhello\r\n", "gateway", settings)
    assert not junk.ok and junk.kept_aside is not None


def test_killing_the_ingest_midway_then_running_it_again_stores_everything_once(database_url: str,
                                                                                 tmp_path: Path) -> None:
    files = [reportgen.write_report(tmp_path / "in", f"r{n}", reportgen.iter_aggregate_xml(15_000, seed=50 + n),
                                    ("xml", "gz", "zip", "xml")[n]) for n in range(4)]
    env = {**os.environ, "MAILWARDEN_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "mailwarden.cli", "--data-dir", str(tmp_path / "data"), "dmarc", "ingest",
               *map(str, files)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert process.stdout is not None
    first_line = process.stdout.readline()  # the first report is committed; the second is being written
    assert json.loads(first_line)["stored"] == 1
    time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    with DmarcIngest.open(settings_for(database_url, tmp_path)) as ingest:
        stored = count(ingest, "dmarc_reports")
        assert 1 <= stored < 4
        with ingest.engine.connect() as connection:  # no report is half stored
            reports, records = table("dmarc_reports"), table("dmarc_records")
            for report_pk, expected in connection.execute(select(reports.c.id, reports.c.record_count)):
                assert connection.scalar(select(func.count()).where(records.c.report == report_pk)) == expected
    done = subprocess.run(command, capture_output=True, env=env, timeout=600, check=True)
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert sum(r["stored"] for r in rows) == 4 - stored and sum(r["duplicates"] for r in rows) == stored
    with DmarcIngest.open(settings_for(database_url, tmp_path)) as ingest:
        assert count(ingest, "dmarc_reports") == 4
        assert count(ingest, "dmarc_records") == 60_000


def test_queries_give_volumes_rates_failing_sources_and_who_sends_as_us(database_url: str, tmp_path: Path) -> None:
    with DmarcIngest.open(settings_for(database_url, tmp_path)) as ingest:
        ingest.ingest_bytes(report_xml("a1", [("192.0.2.10", 90, True, True), ("192.0.2.11", 10, True, False),
                                              ("203.0.113.66", 25, False, False),
                                              ("198.51.100.5", 4, True, False), ("198.51.100.5", 6, False, False)]),
                            "test")
        ingest.ingest_bytes(report_xml("b1", [("192.0.2.10", 50, True, True)], org="other.example",
                                       schema="rfc9990"), "test")
        engine = ingest.engine
        [domain] = queries.summary(engine, "domain")
        assert (domain.key, domain.messages, domain.dmarc_pass, domain.reports) == ("acme.example", 185, 154, 2)
        assert domain.to_dict()["rates"]["spf_aligned"] == round(140 / 185, 4)
        assert domain.to_dict()["disposition"] == {"none": 154, "quarantine": 0, "reject": 31}
        by_org = {s.key: s.messages for s in queries.summary(engine, "org")}
        assert by_org == {"reporter.example": 135, "other.example": 50}
        networks = {s.key: s.messages for s in queries.summary(engine, "network")}
        assert networks["192.0.2.0/24"] == 150
        failing = queries.top_failing_sources(engine)
        assert [(s.key, s.messages - s.dmarc_pass) for s in failing] == [("203.0.113.66", 25), ("198.51.100.5", 6)]
        status = {s.source_ip: s.status for s in queries.senders(engine, domain="acme.example")}
        assert status == {"192.0.2.10": "authorised", "192.0.2.11": "authorised", "203.0.113.66": "unknown",
                          "198.51.100.5": "mixed"}
        assert queries.summary(engine, "domain", since=datetime.now(UTC) + timedelta(days=9999)) == []


def test_alerts_new_unauthorised_source_failure_jump_and_spoof_evidence(database_url: str, tmp_path: Path,
                                                                         corpus: Path) -> None:
    with DmarcIngest.open(settings_for(database_url, tmp_path), own_domains=("acme.example",)) as ingest:
        day = 86_400
        base = 1_780_000_000
        first = ingest.ingest_bytes(report_xml("d0", [("192.0.2.10", 100, True, True), ("203.0.113.9", 5, False,
                                                                                       False)], begin=base), "t")
        assert first.reports[0].alerts == []  # the first report is the baseline
        for n in range(1, 4):
            ingest.ingest_bytes(report_xml(f"d{n}", [("192.0.2.10", 100, True, True),
                                                     ("203.0.113.9", 5, False, False)], begin=base + n * day), "t")
        spike = ingest.ingest_bytes(report_xml("d4", [("192.0.2.10", 100, True, True), ("203.0.113.9", 5, False, False),
                                                      ("198.51.100.77", 400, False, False)], begin=base + 4 * day), "t")
        assert sorted(spike.reports[0].alerts) == ["failure_jump", "unauthorised_source"]
        again = ingest.ingest_bytes(report_xml("d5", [("198.51.100.77", 3, False, False)], begin=base + 5 * day), "t")
        assert again.reports[0].alerts == []  # that source is known now
        alerts = queries.recent_alerts(ingest.engine)
        source = next(a for a in alerts if a["kind"] == "unauthorised_source")
        assert source["source_ip"] == "198.51.100.77" and source["domain"] == "acme.example"
        indicators = {(i["kind"], i["value"]) for i in queries.indicators(ingest.engine)}
        assert ("ip", "198.51.100.77") in indicators and ("domain", "evil.example") in indicators
        with ingest.engine.connect() as connection:  # shared with the rest of the stack (feeds, TAXII)
            shared = {(row.type, row.value) for row in connection.execute(select(table("intel_indicators")))}
        assert ("ipv4", "198.51.100.77") in shared and ("domain", "evil.example") in shared
        failure = ingest.ingest_file(corpus / "failure" / "DMARC Failure Report for domain.de "
                                     "(mail-from=sharepoint@domain.de, ip=10.10.10.10).eml")
        assert failure.reports[0].alerts == ["spoof_evidence"]
        with ingest.engine.connect() as connection:
            events = table("events")
            kinds = [row.payload["kind"] for row in connection.execute(select(events).where(
                events.c.type == "dmarc.alert"))]
            reports = connection.scalar(select(func.count()).select_from(events).where(events.c.type == "dmarc.report"))
        assert sorted(kinds) == ["failure_jump", "spoof_evidence", "unauthorised_source"]
        assert reports == 7
        assert ingest.ingest_file(corpus / "failure" / "DMARC Failure Report for domain.de "
                                  "(mail-from=sharepoint@domain.de, ip=10.10.10.10).eml").duplicates == 1
        assert len(queries.recent_alerts(ingest.engine)) == 3


def test_ingest_and_report_commands(tmp_path: Path, corpus: Path) -> None:
    data = str(tmp_path / "data")
    result = runner.invoke(app, ["--data-dir", data, "dmarc", "ingest", str(corpus / "aggregate")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sum(r["stored"] for r in rows) == 17 and sum(1 for r in rows if r["errors"]) == 2
    report = runner.invoke(app, ["--data-dir", data, "dmarc", "report", "--format", "jsonl", "--domain", "example.com"])
    assert report.exit_code == 0, report.output
    sections = {json.loads(line)["section"] for line in report.stdout.splitlines()}
    assert {"domain", "org", "network", "failing_source", "sender"} <= sections
    table_output = runner.invoke(app, ["--data-dir", data, "dmarc", "report", "--since", "3650d"],
                                 env={"COLUMNS": "200"})
    assert table_output.exit_code == 0 and "Who sends as us" in table_output.stdout
    assert runner.invoke(app, ["--data-dir", data, "dmarc", "report", "--since", "yesterday"]).exit_code == 2


@pytest.mark.parametrize("bad", ["[dmarc]\nnope = 1\n", "[dmarc.alerts]\njump_factor = 'x'\n"])
def test_a_bad_dmarc_section_is_a_usage_error(tmp_path: Path, bad: str, corpus: Path) -> None:
    config = tmp_path / "org.toml"
    config.write_text('[organization]\nname = "Acme"\ndomains = ["acme.example"]\n' + bad)
    result = runner.invoke(app, ["--data-dir", str(tmp_path / "d"), "dmarc", "ingest", "--config", str(config),
                                 str(corpus / "smtp_tls")])
    assert result.exit_code == 2
