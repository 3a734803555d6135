"""``dmarc parse`` on many small reports: the console script answers a plain ``dmarc parse`` without typer
(and pydantic, SQLAlchemy, rich) and prints the same bytes as the typer command; everything else still goes
to typer. A small report read whole gives exactly what the streaming reader gives, errors included."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import reportgen

from mailwarden.console import plain_dmarc_parse
from mailwarden.dmarc.aggregate import _iter_streamed, iter_aggregate
from mailwarden.dmarc.limits import DEFAULT_LIMITS
from mailwarden.errors import ReportError

HEAVY = ("typer", "click", "pydantic", "sqlalchemy", "rich", "fastapi", "mailwarden.cli", "mailwarden.config")


def run_console(*args: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from mailwarden.console import main; sys.argv = ['mailwarden', *sys.argv[1:]]; main(); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}), "
            "file=sys.stderr)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def run_typer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailwarden.cli", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("small")
    _, paths = reportgen.write_corpus(directory, small=24, large_records=0)
    (directory / "small" / "broken.xml").write_bytes(b"<feedback><report_metadata>")
    return [*paths, directory / "small" / "broken.xml"]


def test_a_plain_parse_loads_no_framework_and_prints_what_typer_prints(reports: list[Path]) -> None:
    names = [str(p) for p in reports]
    fast = run_console("dmarc", "parse", "--format", "jsonl", *names)
    assert fast.returncode == 0, fast.stderr
    assert fast.stderr.strip() == "[]"  # not one of the heavy modules was imported
    slow = run_typer("dmarc", "parse", "--format", "jsonl", *names)
    assert slow.returncode == 0 and fast.stdout == slow.stdout
    lines = [json.loads(line) for line in fast.stdout.splitlines()]
    assert len(lines) == 25 and "invalid XML" in lines[-1]["error"]
    directory = run_console("dmarc", "parse", str(reports[0].parent))
    assert directory.stdout == run_typer("dmarc", "parse", str(reports[0].parent)).stdout


@pytest.mark.parametrize("argv", [["dmarc", "parse", "--help"], ["dmarc", "parse"], ["dmarc", "parse", "nope.xml"],
                                  ["dmarc", "parse", "--format", "table", "x"], ["dmarc", "parse", "--format", "xml"],
                                  ["--data-dir", "d", "dmarc", "parse", "x"], ["dmarc", "report"], ["scan", "x"], []])
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert plain_dmarc_parse(argv) is None


def test_typer_gives_the_usage_errors(tmp_path: Path) -> None:
    missing = run_console("dmarc", "parse", str(tmp_path / "nope.xml"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr  # typer's usage error
    helped = run_console("dmarc", "parse", "--help")
    assert helped.returncode == 0 and "Usage" in helped.stdout


def test_option_forms(reports: list[Path]) -> None:
    first = str(reports[0])
    assert plain_dmarc_parse(["dmarc", "parse", first, "--format=jsonl"]) == [reports[0]]
    assert plain_dmarc_parse(["dmarc", "parse", "--", first]) == [reports[0]]


def _outcome(read: Iterator[object]) -> object:
    try:
        return list(read)
    except ReportError as exc:
        return f"error: {exc}"


SAMPLES = [
    b"<feedback><report_metadata>",  # truncated
    b"<?xml version='1.0'?><!DOCTYPE feedback [<!ENTITY a 'b'>]><feedback/>",
    b"<feedback><version>1.0</version></feedback>",  # no records
    b"<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'><feedback>" + reportgen.aggregate_xml(2)[39:],
    reportgen.aggregate_xml(3, seed=2) + b"<junk after the report",
    reportgen.aggregate_xml(3, seed=3).replace(b"<feedback>", b"<feedback xmlns:xsi='urn:x' xmlns='urn:y'>"),
    reportgen.aggregate_xml(3, seed=4).replace(b"<record>", b"<record><row><count>x</count></row></record><record>",
                                               1),
    b"<feedback>\xff</feedback>",
    b"   \n<feedback/>",
    b"<other/>",
]


@pytest.mark.parametrize("data", SAMPLES + [reportgen.aggregate_xml(20, seed=n, schema=s, reporter=r)
                                           for n, (s, r) in enumerate([("rfc7489", "google.com"),
                                                                       ("rfc9990", "Yahoo"),
                                                                       ("rfc9990", "protection.outlook.com")])])
def test_a_report_read_whole_reads_as_when_streamed(data: bytes) -> None:
    assert repr(_outcome(iter_aggregate([data]))) == repr(_outcome(_iter_streamed([data], DEFAULT_LIMITS)))


def test_the_corpus_reads_the_same_whole_and_streamed(corpus: Path) -> None:
    for path in sorted(corpus.rglob("*.xml")):
        data = path.read_bytes()
        assert repr(_outcome(iter_aggregate([data]))) == repr(_outcome(_iter_streamed([data], DEFAULT_LIMITS))), \
            path.name


def test_a_reader_that_goes_away_ends_it_quietly(reports: list[Path]) -> None:
    process = subprocess.Popen([sys.executable, "-m", "mailwarden.console", "dmarc", "parse",
                                *[str(p) for p in reports * 40]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(100).startswith(b'{"file": ')
    process.stdout.close()  # like "| head -c 100"
    assert process.wait(timeout=60) == 1
    assert process.stderr.read() == b""
    process.stderr.close()


@pytest.mark.parametrize("name", ["protection.outlook.com", "Mail.RU", "google.com", "Yahoo", "a.b.c.co.uk",
                                  "mx.google.com.", "x.blogspot.com", "foo.bar.ck", "www.ck", "a.b.kawasaki.jp",
                                  "city.kobe.jp", "AMAZONSES.COM", "x.y.github.io", "dmarc.yandex.ru", "ab.xn--p1ai",
                                  "COM", "x.cdn.cloudflare.net", "a.b.c.d.e.f.org", "Enterprise Outlook"])
def test_the_reporter_is_named_by_one_tlds_rules_as_by_the_whole_list(name: str) -> None:
    from publicsuffixlist import PublicSuffixList

    from mailwarden.dmarc.aggregate import reporter_name

    expected = name
    if " " not in name and not (name.count(".") == 1 and name == name.lower()):
        expected = PublicSuffixList().privatesuffix(name.lower()) or name
    assert reporter_name(name) == expected
