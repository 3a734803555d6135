"""``mailwarden dmarc parse``: one JSON line per report or error, exit codes, the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import reportgen
from typer.testing import CliRunner

from mailwarden.cli import app

runner = CliRunner()


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_parse_prints_one_line_per_report_or_error(corpus: Path) -> None:
    result = runner.invoke(app, ["dmarc", "parse", "--format", "jsonl", str(corpus)])
    assert result.exit_code == 0, result.output
    rows = lines(result.stdout)
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    assert len(rows) == len(files)
    kinds = {Path(str(r["file"])).parent.name + "/" + Path(str(r["file"])).name: r.get("report_type", "error")
             for r in rows}
    assert kinds["aggregate/twilight.eml"] == "aggregate"
    assert kinds["failure/exim_plain_text_only_no_arf_part.eml"] == "failure"
    assert kinds["smtp_tls/rfc8460.json"] == "smtp_tls"
    assert kinds["aggregate/invalid_xml.xml"] == "error"
    aggregate = next(r for r in rows if str(r["file"]).endswith("rfc9990-sample.xml"))
    report = aggregate["report"]
    assert isinstance(report, dict)
    assert report["report_metadata"]["org_name"] == "Sample Reporter"
    assert report["policy_published"]["p"] == "quarantine"
    record = report["records"][0]
    assert record["source"]["ip_address"] == "192.0.2.123"
    assert record["policy_evaluated"]["disposition"] == "pass"
    assert record["identifiers"]["header_from"] == "example.com"
    assert record["auth_results"]["dkim"][0]["selector"] == "abc123"
    error = next(r for r in rows if str(r["file"]).endswith("empty.xml"))
    assert error == {"file": str(corpus / "empty.xml"), "error": "empty input"}


def test_parse_exit_codes() -> None:
    assert runner.invoke(app, ["dmarc", "parse", "/no/such/file"]).exit_code == 2
    assert runner.invoke(app, ["dmarc", "parse", "--format", "yaml", "x"]).exit_code == 2
    assert runner.invoke(app, ["dmarc", "parse"]).exit_code == 2


def test_parse_table(corpus: Path) -> None:
    result = runner.invoke(app, ["dmarc", "parse", "--format", "table", str(corpus / "smtp_tls")],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "smtp_tls" in result.stdout and "Company-X" in result.stdout


def test_a_large_report_is_one_valid_line_from_the_real_command(tmp_path: Path) -> None:
    path = reportgen.write_report(tmp_path, "big", reportgen.iter_aggregate_xml(20_000, seed=4), "gz")
    done = subprocess.run([sys.executable, "-m", "mailwarden.cli", "dmarc", "parse", str(path)], capture_output=True,
                          check=True, timeout=120)
    [row] = lines(done.stdout.decode())
    assert row["report_type"] == "aggregate"
    assert len(row["report"]["records"]) == 20_000  # type: ignore[index]


def test_an_error_late_in_a_report_gives_an_error_line_not_half_a_report(tmp_path: Path) -> None:
    xml = reportgen.aggregate_xml(3000, seed=6)
    path = tmp_path / "cut.xml"
    path.write_bytes(xml[: len(xml) * 9 // 10])
    result = runner.invoke(app, ["dmarc", "parse", str(path)])
    [row] = lines(result.stdout)
    assert set(row) == {"file", "error"}
