"""The command line as DESIGN.md specifies it: arguments, output schema, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailwarden.cli import app

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCENARIOS = SHARED / "scenarios"
runner = CliRunner()

PHISH = b"""From: "Microsoft account team" <no-reply@access-security.example>
To: bob@acme-corp.com
Subject: Unusual sign-in activity
Message-ID: <p1@access-security.example>
Content-Type: text/html

<p>Dear user, verify your account within 24 hours or it will be suspended.</p>
<a href="http://192.0.2.9/o365/">https://login.microsoftonline.com</a>
"""
HAM = b"""From: Alice <alice@example.org>
To: bob@acme-corp.com
Subject: minutes
Message-ID: <h1@example.org>

The minutes from Tuesday are below.
"""


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--data-dir", str(tmp_path / "data"), *args])
    return result.exit_code, result.stdout, result.stderr


def rows(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mail"
    (folder / "sub").mkdir(parents=True)
    (folder / "phish.eml").write_bytes(PHISH)
    (folder / "sub" / "ham.eml").write_bytes(HAM)
    return folder


def test_scan_prints_one_json_object_per_message(tmp_path: Path, mail_dir: Path) -> None:
    code, out, _ = run(tmp_path, "scan", "--format", "jsonl", str(mail_dir))
    assert code == 0
    found = {Path(str(r["file"])).name: r for r in rows(out)}
    assert set(found) == {"phish.eml", "ham.eml"}
    phish = found["phish.eml"]
    assert set(phish) == {"file", "message_id", "verdict", "score", "signals"}
    assert phish["message_id"] == "<p1@access-security.example>"
    assert phish["verdict"] in ("quarantine", "reject")
    assert isinstance(phish["score"], int) and 0 <= phish["score"] <= 100
    for signal in phish["signals"]:  # type: ignore[attr-defined]
        assert set(signal) == {"id", "score", "detail"}
    assert found["ham.eml"]["verdict"] == "deliver"


def test_an_mbox_yields_one_row_per_message(tmp_path: Path) -> None:
    mbox = tmp_path / "inbox.mbox"
    mbox.write_bytes(b"From a@b Mon Mar  2 10:00:00 2026\n" + HAM + b"\nFrom c@d Mon Mar  2 10:00:00 2026\n" + PHISH)
    code, out, _ = run(tmp_path, "scan", str(mbox))
    assert code == 0
    assert [str(r["file"]).rsplit(":", 1)[1] for r in rows(out)] == ["1", "2"]


def test_an_unreadable_file_is_reported_and_the_scan_goes_on(tmp_path: Path, mail_dir: Path) -> None:
    locked = mail_dir / "locked.eml"
    locked.write_bytes(HAM)
    locked.chmod(0)
    try:
        code, out, _ = run(tmp_path, "scan", str(mail_dir))
    finally:
        locked.chmod(0o644)
    assert code == 0
    results = rows(out)
    assert len(results) == 3
    if any("error" in r for r in results):  # root can read anything; elsewhere the error row is the contract
        error = next(r for r in results if "error" in r)
        assert set(error) == {"file", "error"}


def test_usage_errors_exit_with_status_2(tmp_path: Path) -> None:
    assert run(tmp_path, "scan", str(tmp_path / "missing"))[0] == 2
    assert run(tmp_path, "scan", "--format", "xml", str(tmp_path))[0] == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[organization\n")
    assert run(tmp_path, "scan", "--config", str(bad), str(tmp_path))[0] == 2
    assert run(tmp_path, "scan", "--workers", "0", str(tmp_path))[0] == 2


def test_table_output_names_each_file_and_verdict(tmp_path: Path, mail_dir: Path) -> None:
    code, out, _ = run(tmp_path, "scan", "--format", "table", str(mail_dir))
    assert code == 0
    assert "phish.eml" in out and "ham.eml" in out and "deliver" in out


def test_scan_help_is_clear() -> None:
    result = runner.invoke(app, ["scan", "--help"])
    assert result.exit_code == 0
    for option in ("--config", "--format", "--workers", "jsonl", "table"):
        assert option in result.stdout


def test_two_workers_give_the_same_results_as_one(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mailwarden.cli", "--data-dir", str(tmp_path / "d"), "scan",
               "--config", str(SCENARIOS / "org.toml"), str(SCENARIOS / "messages")]
    one = subprocess.run([*command, "--workers", "1"], capture_output=True, check=True, timeout=300).stdout
    two = subprocess.run([*command, "--workers", "2"], capture_output=True, check=True, timeout=300).stdout
    assert rows(one.decode()) == rows(two.decode())
    assert len(rows(one.decode())) == 32


def test_the_scenario_table_works_from_the_installed_command(tmp_path: Path) -> None:
    result = subprocess.run(["mailwarden", "--data-dir", str(tmp_path / "d"), "scan", str(SCENARIOS / "messages"),
                             "--config", str(SCENARIOS / "org.toml"), "--format", "table"],
                            capture_output=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert b"msg-001.eml" in result.stdout


def test_a_bad_resolver_setting_is_a_usage_error(tmp_path: Path, mail_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWARDEN_RESOLVER", "not a resolver:port")
    code, _, err = run(tmp_path, "scan", str(mail_dir))
    assert code == 2
    assert "resolver" in err.lower() or "MAILWARDEN_RESOLVER" in err
