"""The gateway's commands: exit codes and output (queue, logs, apikey, serve's usage errors)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailwarden.cli import app
from mailwarden.gateway import logs
from mailwarden.gateway.queue import enqueue
from mailwarden.gateway.server import open_engine
from mailwarden.gateway.spool import Spool

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def cli(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MAILWARDEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAILWARDEN_DATABASE_URL", database_url)
    engine = open_engine(database_url)
    spool = Spool(tmp_path / "data" / "spool").create()
    try:
        with engine.begin() as connection:
            for n in range(2):
                spool.write(f"{n:04x}", b"Subject: x\r\n\r\nbody\r\n")
                enqueue(connection, ref=f"{n:04x}", kind="message", mail_from="a@b.test", recipients=["c@d.test"],
                        destination="127.0.0.1:25", now=NOW, expire_after=3600)
            logs.record_rejection(connection, time=NOW, client_ip="192.0.2.1", helo="h", mail_from="a@b.test",
                                  recipients=["c@d.test"], header_from="a@b.test", message_id="<r@b.test>",
                                  reason="dmarc", detail="DMARC policy of b.test rejects", dmarc="fail")
    finally:
        engine.dispose()
    return CliRunner()


def test_queue_list_retry_and_drop(cli: CliRunner, tmp_path: Path) -> None:
    listed = cli.invoke(app, ["queue", "list", "--format", "jsonl"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["state"] for r in rows] == ["pending", "pending"] and "prepend" not in rows[0]
    assert cli.invoke(app, ["queue", "retry"]).stdout.startswith("2 entries due now")
    dropped = cli.invoke(app, ["queue", "drop", str(rows[0]["id"])])
    assert dropped.exit_code == 0 and len(list((tmp_path / "data" / "spool").glob("*.eml"))) == 1
    assert cli.invoke(app, ["queue", "drop", str(rows[0]["id"])]).exit_code == 1
    pending = cli.invoke(app, ["queue", "list", "--format", "jsonl", "--state", "pending"]).stdout.splitlines()
    assert len(pending) == 1


def test_logs_rejections_with_filters(cli: CliRunner) -> None:
    found = cli.invoke(app, ["logs", "rejections", "--reason", "dmarc", "--since", "2026-03-02T11:00:00"])
    assert found.exit_code == 0
    [row] = [json.loads(line) for line in found.stdout.splitlines()]
    assert row["message_id"] == "<r@b.test>" and row["dmarc"] == "fail"
    assert cli.invoke(app, ["logs", "rejections", "--until", "2026-03-02T11:00:00Z"]).stdout == ""
    assert cli.invoke(app, ["logs", "rejections", "--since", "yesterday"]).exit_code == 2
    assert cli.invoke(app, ["logs", "releases", "--dmarc", "fail"]).stdout == ""


def test_apikey_create_prints_the_key_last_and_refuses_unknown_scopes(cli: CliRunner) -> None:
    created = cli.invoke(app, ["apikey", "create", "--scope", "read:logs,quarantine:read"])
    assert created.exit_code == 0
    assert created.stdout.splitlines()[-1].startswith("mwk_")
    refused = cli.invoke(app, ["apikey", "create", "--scope", "root"])
    assert refused.exit_code == 2 and "unknown: root" in refused.stderr


def test_serve_needs_a_relay_and_the_organisations_domains(cli: CliRunner, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILWARDEN_RELAY", raising=False)
    config = tmp_path / "org.toml"
    config.write_text('[organization]\nname = "Acme"\ndomains = ["acme.test"]\n', encoding="utf-8")
    no_relay = cli.invoke(app, ["serve", "--config", str(config)])
    assert no_relay.exit_code == 2 and "no relay" in no_relay.stderr
    bad = cli.invoke(app, ["serve", "--config", str(config), "--relay", "mail.internal", "--smtp-listen", "x:1"])
    assert bad.exit_code == 2 and "--relay" in bad.stderr
    config.write_text('[organization]\nname = "Acme"\n[gateway]\nmax_recipients = "many"\n', encoding="utf-8")
    assert "max_recipients must be a number" in cli.invoke(app, ["serve", "--config", str(config)]).stderr
