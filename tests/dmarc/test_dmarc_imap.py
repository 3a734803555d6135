"""The IMAP path against a real Dovecot: fetch, store, move only once stored; bad mail moved aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imapserver import Imap
from typer.testing import CliRunner

from mailwarden.cli import app
from mailwarden.config import Settings
from mailwarden.dmarc.imap import ImapAccount, ImapError, poll
from mailwarden.dmarc.ingest import DmarcIngest
from mailwarden.dmarc.queries import summary
from mailwarden.errors import StoreError


def _account(server: Imap, password: str | None = None) -> ImapAccount:
    return ImapAccount(server.host, server.port, server.user, password or server.password, tls=False)


def test_reports_are_stored_then_moved_and_bad_mail_is_set_aside(dovecot: Imap, corpus: Path, tmp_path: Path) -> None:
    dovecot.append((corpus / "aggregate" / "twilight.eml").read_bytes())
    dovecot.append((corpus / "failure" / "dmarc_ruf_report_linkedin.eml").read_bytes())
    dovecot.append((corpus / "smtp_tls" / "google.com_smtp_tls_report.eml").read_bytes())
    dovecot.append(b"From: someone@example.org\r\nSubject: hello\r\n\r\nnot a report\r\n")
    settings = Settings.from_env(tmp_path / "data")
    with DmarcIngest.open(settings) as ingest:
        result = poll(_account(dovecot), ingest, processed_folder="DMARC/Processed", invalid_folder="DMARC/Invalid")
        assert (result.fetched, result.moved, result.invalid) == (4, 3, 1)
        assert sum(r.stored for r in result.results) == 3
        assert dovecot.count("INBOX") == 0
        assert dovecot.count("DMARC/Processed") == 3
        assert dovecot.count("DMARC/Invalid") == 1
        assert [s.key for s in summary(ingest.engine, "domain")] == ["twlnet.com"]
        assert len(list((tmp_path / "data" / "dmarc" / "invalid").glob("*.error.json"))) == 1
        again = poll(_account(dovecot), ingest)
        assert (again.fetched, again.moved) == (0, 0)


def test_a_message_already_stored_is_moved_without_storing_it_twice(dovecot: Imap, corpus: Path,
                                                                     tmp_path: Path) -> None:
    raw = (corpus / "aggregate" / "mimecast-weird-gzip.eml").read_bytes()
    settings = Settings.from_env(tmp_path / "data")
    with DmarcIngest.open(settings) as ingest:
        # a poll that stored the report and died before moving the message: the report is in the database
        assert ingest.ingest_bytes(raw, "imap-before-crash").stored == 1
        dovecot.append(raw)
        result = poll(_account(dovecot), ingest, processed_folder="Done", invalid_folder=None)
        assert result.moved == 1
        assert result.results[0].duplicates == 1 and result.results[0].stored == 0
        assert dovecot.count("Done") == 1 and dovecot.count("INBOX") == 0


def test_nothing_moves_when_the_store_fails(dovecot: Imap, corpus: Path, tmp_path: Path) -> None:
    dovecot.append((corpus / "aggregate" / "twilight.eml").read_bytes())
    settings = Settings(tmp_path / "data", "sqlite:///" + str(tmp_path / "data" / "mw.db"))
    ingest = DmarcIngest.open(settings)
    ingest.engine.dispose()
    (tmp_path / "data" / "mw.db").unlink()
    (tmp_path / "data" / "mw.db").mkdir()  # the database file is now a directory: every write fails
    with pytest.raises(StoreError, match=r"database|unable|directory"):
        poll(_account(dovecot), ingest, processed_folder="Done")
    assert dovecot.count("INBOX") == 1


def test_a_wrong_password_is_a_clear_error(dovecot: Imap, tmp_path: Path) -> None:
    with DmarcIngest.open(Settings.from_env(tmp_path / "data")) as ingest, \
            pytest.raises(ImapError, match="cannot log in"):
        poll(_account(dovecot, "wrong"), ingest)


def test_the_imap_command_polls_once(dovecot: Imap, corpus: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dovecot.append((corpus / "aggregate" / "twilight.eml").read_bytes())
    monkeypatch.setenv("REPORTS_PW", dovecot.password)
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "dmarc", "imap", "--host", dovecot.host,
                                      "--port", str(dovecot.port), "--no-tls", "--user", dovecot.user,
                                      "--password-env", "REPORTS_PW", "--processed-folder", "Archive"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert (line["fetched"], line["moved"], line["stored"]) == (1, 1, 1)
    assert dovecot.count("Archive") == 1
    missing = CliRunner().invoke(app, ["dmarc", "imap", "--host", "h", "--user", "u", "--password-env", "NOPE_X"])
    assert missing.exit_code == 2
