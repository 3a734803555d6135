"""``mailwarden intel``: add, list, revoke, export in every format, hunt, webhooks; exit codes and output."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailwarden.cli import app


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.delenv("MAILWARDEN_DATABASE_URL", raising=False)
    monkeypatch.setenv("USER", "analyst")
    runner = CliRunner()
    data = tmp_path / "data"

    def invoke(*args: str) -> object:
        return runner.invoke(app, ["--data-dir", str(data), "intel", *args])

    return invoke


def test_add_list_revoke(run: object, tmp_path: Path) -> None:
    invoke = run  # type: ignore[assignment]
    added = invoke("add", "domain", "Evil.Example", "--confidence", "90", "--action", "block", "--tag", "soc")
    assert added.exit_code == 0, added.output
    body = json.loads(added.output)
    assert body["indicator"]["value"] == "evil.example" and body["indicator"]["source"] == "cli:analyst"
    assert body["retrohunt"]["covered"]["archive"] is True
    listed = invoke("list", "--type", "domain")
    assert [json.loads(line)["value"] for line in listed.output.splitlines()] == ["evil.example"]
    table = invoke("list", "--format", "table")
    assert "evil" in table.output and "block" in table.output
    refused = invoke("add", "domain", "google.com")
    assert refused.exit_code == 1 and "allow-listed" in refused.output
    bad = invoke("add", "domain", "x.example", "--action", "nuke")
    assert bad.exit_code == 2
    revoked = invoke("revoke", str(body["indicator"]["id"]), "--reason", "test")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert invoke("list", "--active").output == ""
    assert invoke("revoke", "999").exit_code == 1


def test_export_every_format(run: object, tmp_path: Path) -> None:
    invoke = run  # type: ignore[assignment]
    for kind, value in [("domain", "evil.example"), ("url", "https://evil.example/pay"), ("ipv4", "203.0.113.9")]:
        assert invoke("add", kind, value, "--confidence", "80", "--no-hunt").exit_code == 0
    assert invoke("export", "--format", "edl").output == "evil.example\n"
    assert invoke("export", "--format", "edl", "--kind", "url").output == "evil.example/pay\n"
    assert invoke("export", "--format", "edl", "--kind", "ip").output == "203.0.113.9\n"
    bundle = json.loads(invoke("export", "--format", "stix").output)
    assert bundle["type"] == "bundle" and sum(o["type"] == "indicator" for o in bundle["objects"]) == 3
    csv_text = invoke("export", "--format", "csv").output
    assert csv_text.splitlines()[0].startswith("id,stix_id,type,value")
    zone = tmp_path / "rpz.zone"
    assert invoke("export", "--format", "rpz", "--output", str(zone)).exit_code == 0
    checker = shutil.which("named-checkzone")
    if checker is not None:
        assert subprocess.run([checker, "rpz.mailwarden", str(zone)], capture_output=True, check=False).returncode == 0
    misp = tmp_path / "misp"
    assert invoke("export", "--format", "misp", "--output", str(misp)).exit_code == 0
    manifest = json.loads((misp / "manifest.json").read_text())
    assert all((misp / f"{uuid}.json").exists() for uuid in manifest)
    assert invoke("export", "--format", "misp").exit_code == 2


def test_hunt_and_webhook_commands(run: object) -> None:
    invoke = run  # type: ignore[assignment]
    added = json.loads(invoke("add", "email-addr", "ceo@evil.example", "--no-hunt").output)
    hunted = invoke("hunt", str(added["indicator"]["id"]), "--remediate")
    assert hunted.exit_code == 0 and json.loads(hunted.output)["matches"] == []
    assert invoke("hunt", "999").exit_code == 1
    assert invoke("webhooks", "dead").output == ""
    assert invoke("webhooks", "replay").exit_code == 2
    assert invoke("webhooks", "replay", "--all-dead").output.strip() == "0 deliveries queued again"
    assert invoke("pull").exit_code == 2
