"""The archive: every accepted message kept (compressed, content-addressed, deduplicated), found by sender,
recipient, subject, domain, URL host, attachment hash and time, removed by id or query with a removal log,
and pruned after ``archive_days``; through the gateway, the CLI and the module."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gwharness import GatewayFactory, Recorder, RunningGateway
from gwmail import RCPT, build, clean, phish, quarantined, send, warned
from typer.testing import CliRunner

from mailwarden.cli import app
from mailwarden.gateway import archive, quarantine
from mailwarden.gateway.archive import ArchiveError, ArchiveQuery
from mailwarden.store.blobs import BlobError, BlobStore

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def with_links_and_attachment(message_id: str = "<inv@good.gw.test>") -> bytes:
    encoded = base64.encodebytes(PDF).decode("ascii").replace("\n", "\r\n")
    lines = ["From: Alice <alice@good.gw.test>", f"To: {RCPT}", "Cc: carol@acme.gw.test",
             "Reply-To: Accounts <accounts@good.gw.test>", "Subject: Invoice 4711 <b>due</b>",
             f"Message-ID: {message_id}", "Date: Mon, 02 Mar 2026 10:00:00 +0000", "MIME-Version: 1.0",
             'Content-Type: multipart/mixed; boundary="mix"', "", "--mix",
             "Content-Type: text/plain; charset=utf-8", "",
             "The invoice is attached; the portal: https://portal.Files.Example.net/inv/4711 and",
             "https://docs.good.gw.test/terms", "--mix", "Content-Type: application/pdf",
             'Content-Disposition: attachment; filename="invoice.pdf"', "Content-Transfer-Encoding: base64", "",
             encoded.rstrip("\r\n"), "--mix--", ""]
    return "\r\n".join(lines).encode("utf-8")


def _ids(page: archive.Page) -> list[str]:
    return [item["message_id"] for item in page.items]


def test_every_accepted_message_is_archived_and_a_refused_one_is_not(gateway: RunningGateway,
                                                                     downstream: Recorder) -> None:
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    assert send(gateway.smtp_port, "info@promo.gw.test", warned())[0] == 250
    assert send(gateway.smtp_port, "info@promo.gw.test", quarantined())[0] == 250
    assert send(gateway.smtp_port, "no-reply@promo.gw.test", phish())[0] == 550
    downstream.wait_for(2)
    items = archive.search(gateway.engine, ArchiveQuery()).items
    assert [(i["verdict"], i["actions"]) for i in items] == [
        ("quarantine", ["quarantine"]), ("warn", ["banner"]), ("deliver", ["deliver"])]
    newest = items[0]
    assert newest["message_id"] == "<q1@promo.gw.test>" and newest["recipients"] == [RCPT]
    assert newest["mail_from"] == "info@promo.gw.test" and newest["header_from"] == "info@promo.gw.test"
    assert newest["subject"] == "Updated payment details" and newest["client_ip"] == "127.0.0.1"
    assert newest["score"] >= 50 and any(s["id"] == "sender.display_name_partner" for s in newest["signals"])
    blobs = gateway.gateway.blobs
    assert blobs.get(newest["blob"]) == quarantined()  # the raw message, byte for byte
    assert newest["blob"] == hashlib.sha256(quarantined()).hexdigest() and newest["size"] == len(quarantined())
    stored = blobs.path(newest["blob"]).read_bytes()
    assert stored[:2] == b"\x1f\x8b" and gzip.decompress(stored) == quarantined()  # compressed on disk
    assert sorted(blobs.digests()) == sorted(i["blob"] for i in items)  # the refused message left nothing


def test_the_same_bytes_are_stored_once(gateway: RunningGateway, downstream: Recorder) -> None:
    for _ in range(3):
        assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    downstream.wait_for(3)
    items = archive.search(gateway.engine, ArchiveQuery()).items
    assert len(items) == 3 and len({i["message_ref"] for i in items}) == 3 and len({i["blob"] for i in items}) == 1
    assert len(list(gateway.gateway.blobs.digests())) == 1


def test_search_by_every_criterion(gateway: RunningGateway, downstream: Recorder) -> None:
    assert send(gateway.smtp_port, "bounce+x@good.gw.test", with_links_and_attachment(),
                recipients=(RCPT, "Carol@acme.gw.test"))[0] == 250
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    downstream.wait_for(2)
    engine = gateway.engine
    found = archive.search(engine, ArchiveQuery(sender="alice@good.gw.test"))
    assert _ids(found) == ["<clean@good.gw.test>", "<inv@good.gw.test>"]  # header From of both
    assert _ids(archive.search(engine, ArchiveQuery(sender="BOUNCE+x@good.gw.test"))) == ["<inv@good.gw.test>"]
    assert _ids(archive.search(engine, ArchiveQuery(recipient="carol@ACME.gw.test"))) == ["<inv@good.gw.test>"]
    assert len(archive.search(engine, ArchiveQuery(recipient=RCPT)).items) == 2
    assert _ids(archive.search(engine, ArchiveQuery(subject="invoice 4711 <B>"))) == ["<inv@good.gw.test>"]
    assert _ids(archive.search(engine, ArchiveQuery(subject="100%"))) == []  # LIKE wildcards are literal
    assert _ids(archive.search(engine, ArchiveQuery(domain="example.net"))) == ["<inv@good.gw.test>"]
    assert len(archive.search(engine, ArchiveQuery(domain="good.gw.test")).items) == 2
    assert _ids(archive.search(engine, ArchiveQuery(url_host="portal.files.example.net"))) == ["<inv@good.gw.test>"]
    assert _ids(archive.search(engine, ArchiveQuery(url_host="files.example.net"))) == []  # hosts match exactly
    digest = hashlib.sha256(PDF).hexdigest()
    assert _ids(archive.search(engine, ArchiveQuery(attachment=digest.upper()))) == ["<inv@good.gw.test>"]
    assert _ids(archive.search(engine, ArchiveQuery(sender="alice@good.gw.test", attachment=digest))) == [
        "<inv@good.gw.test>"]  # criteria combine with AND
    now = datetime.now(UTC)
    assert len(archive.search(engine, ArchiveQuery(since=now - timedelta(minutes=5))).items) == 2
    assert archive.search(engine, ArchiveQuery(until=now - timedelta(minutes=5))).items == []
    shown = archive.get(engine, archive.search(engine, ArchiveQuery(attachment=digest)).items[0]["id"])
    assert shown is not None
    assert shown["indicators"]["attachment"] == [digest]
    assert set(shown["indicators"]["recipient"]) == {RCPT, "carol@acme.gw.test"}
    assert {"portal.files.example.net", "docs.good.gw.test"} <= set(shown["indicators"]["url_host"])
    with pytest.raises(ArchiveError):
        archive.search(engine, ArchiveQuery(attachment="not-a-hash"))


def test_search_pages_with_a_cursor(gateway: RunningGateway, downstream: Recorder) -> None:
    for n in range(5):
        assert send(gateway.smtp_port, "alice@good.gw.test", clean(f"<p{n}@good.gw.test>"))[0] == 250
    downstream.wait_for(5)
    seen, cursor = [], None
    while True:
        page = archive.search(gateway.engine, ArchiveQuery(sender="alice@good.gw.test"), cursor=cursor, limit=2)
        seen += _ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"<p{n}@good.gw.test>" for n in reversed(range(5))]


def test_removal_by_id_and_by_query_is_logged_and_takes_the_quarantined_copy(gateway: RunningGateway,
                                                                             downstream: Recorder) -> None:
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    assert send(gateway.smtp_port, "info@promo.gw.test", quarantined())[0] == 250
    downstream.wait_for(2)
    engine, blobs, spool = gateway.engine, gateway.gateway.blobs, gateway.gateway.spool
    now = datetime.now(UTC)
    [first] = archive.search(engine, ArchiveQuery(subject="minutes", sender="alice@good.gw.test"), limit=1).items
    one = archive.remove(engine, blobs, who="alice", now=now, ids=[first["id"]], spool=spool)
    assert (one.count, one.quarantined) == (1, 0)
    assert blobs.exists(first["blob"])  # the other clean message has the same bytes: the blob stays
    held = quarantine.list_held(engine).items[0]
    by_query = archive.remove(engine, blobs, who="soc", now=now, query=ArchiveQuery(domain="PROMO.gw.test"),
                              spool=spool)
    assert (by_query.count, by_query.quarantined) == (1, 1)
    assert quarantine.get(engine, held["id"])["state"] == "deleted"  # nobody can release it any more
    assert not spool.exists(held["message_ref"]) and not blobs.exists(hashlib.sha256(quarantined()).hexdigest())
    assert archive.remove(engine, blobs, who="soc", now=now, query=ArchiveQuery(domain="promo.gw.test")).count == 0
    log = archive.list_removals(engine).items
    assert [(r["who"], r["count"], r["query"]) for r in log] == [
        ("soc", 0, {"domain": "promo.gw.test"}), ("soc", 1, {"domain": "promo.gw.test"}),
        ("alice", 1, {"ids": [first["id"]]})]
    assert log[1]["message_refs"] == [held["message_ref"]]
    with pytest.raises(ArchiveError, match="at least one criterion"):
        archive.remove(engine, blobs, who="soc", now=now, query=ArchiveQuery())
    [left] = archive.search(engine, ArchiveQuery()).items
    archive.remove(engine, blobs, who="soc", now=now, ids=[left["id"]])
    assert list(blobs.digests()) == []  # the last message with those bytes took the blob along


def test_retention_prunes_old_messages_and_leaves_quarantine_alone(gateway: RunningGateway,
                                                                    downstream: Recorder) -> None:
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    assert send(gateway.smtp_port, "info@promo.gw.test", quarantined())[0] == 250
    downstream.wait_for(1)
    engine, blobs = gateway.engine, gateway.gateway.blobs
    now = datetime.now(UTC)
    assert archive.prune(engine, blobs, older_than=now - timedelta(days=1), now=now).count == 0
    assert archive.list_removals(engine).items == []  # retention that found nothing leaves no entry
    pruned = archive.prune(engine, blobs, older_than=now + timedelta(seconds=1), now=now)
    assert pruned.count == 2 and pruned.quarantined == 0
    assert archive.search(engine, ArchiveQuery()).items == [] and list(blobs.digests()) == []
    assert quarantine.list_held(engine).items[0]["state"] == "held"
    [entry] = archive.list_removals(engine).items
    assert entry["who"] == "retention" and entry["count"] == 2 and "until" in entry["query"]


def test_the_gateway_prunes_on_its_own(downstream: Recorder, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(archive_days=1e-9, archive_prune_interval=0.2)  # everything is too old at once
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    downstream.wait_for(1)
    for _ in range(200):
        if not archive.search(gateway.engine, ArchiveQuery()).items:
            break
        time.sleep(0.05)
    assert archive.search(gateway.engine, ArchiveQuery()).items == []
    assert archive.list_removals(gateway.engine).items[0]["who"] == "retention"


def test_cli_search_show_delete_prune_and_the_removal_log(gateway: RunningGateway, downstream: Recorder,
                                                           tmp_path: Path, database_url: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    subject = "Quarterly \x1b[31mreport\x1b[0m <script>"
    assert send(gateway.smtp_port, "alice@good.gw.test", build("Alice <alice@good.gw.test>", subject, "Hello",
                                                               message_id="<cli@good.gw.test>"))[0] == 250
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    downstream.wait_for(2)
    monkeypatch.setenv("MAILWARDEN_DATABASE_URL", database_url)
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "data")]

    result = runner.invoke(app, [*base, "messages", "search", "--subject", "quarterly", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["message_id"] == "<cli@good.gw.test>" and row["recipients"] == [RCPT]
    table = runner.invoke(app, [*base, "messages", "search", "--sender", "alice@good.gw.test"])
    assert table.exit_code == 0 and "\x1b" not in table.stdout and "Quarterly" in table.stdout

    shown = runner.invoke(app, [*base, "messages", "show", str(row["id"])])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["indicators"]["sender"] == ["alice@good.gw.test"]
    raw = runner.invoke(app, [*base, "messages", "show", str(row["id"]), "--raw"])
    assert raw.exit_code == 0 and raw.stdout_bytes.startswith(b"From: Alice <alice@good.gw.test>")

    usage = runner.invoke(app, [*base, "messages", "delete"])
    assert usage.exit_code == 2 and "ids or search criteria" in usage.stderr
    dry = runner.invoke(app, [*base, "messages", "delete", "--sender", "alice@good.gw.test", "--dry-run"])
    assert dry.exit_code == 0 and "2 messages would be removed" in dry.stdout
    gone = runner.invoke(app, [*base, "messages", "delete", "--subject", "quarterly", "--by", "dpo"])
    assert gone.exit_code == 0 and "removed 1 messages" in gone.stdout, gone.output
    missing = runner.invoke(app, [*base, "messages", "delete", str(row["id"])])
    assert missing.exit_code == 1 and "not in the archive" in missing.stderr
    pruned = runner.invoke(app, [*base, "messages", "prune", "--days", "0"])
    assert pruned.exit_code == 0 and "removed 1 messages" in pruned.stdout

    log = runner.invoke(app, [*base, "logs", "removals"])
    assert log.exit_code == 0, log.output
    entries = [json.loads(line) for line in log.stdout.splitlines()]
    cli_user = "cli:" + os.environ.get("USER", "unknown")
    assert [(e["who"], e["count"]) for e in entries] == [("retention", 1), (cli_user, 0), ("dpo", 1)]
    assert entries[2]["query"] == {"subject": "quarterly"}


def test_blob_store_refuses_bad_names_and_reports_damage(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "archive").create()
    digest, written = blobs.put(b"hello")
    assert written and blobs.put(b"hello") == (digest, False) and blobs.get(digest) == b"hello"
    with pytest.raises(BlobError):
        blobs.path("../../etc/passwd")
    blobs.path(digest).write_bytes(b"not gzip")
    with pytest.raises(BlobError, match="damaged"):
        blobs.get(digest)
    blobs.remove(digest)
    with pytest.raises(BlobError, match="missing"):
        blobs.get(digest)


def test_blobs_of_unrecorded_transactions_are_swept(gateway: RunningGateway, downstream: Recorder) -> None:
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    downstream.wait_for(1)
    blobs = gateway.gateway.blobs
    kept = hashlib.sha256(clean()).hexdigest()
    stale, _ = blobs.put(b"a message whose transaction was killed before it was recorded")
    fresh, _ = blobs.put(b"a message being recorded right now")
    hour_ago = time.time() - 7200
    for digest in (kept, stale):
        os.utime(blobs.path(digest), (hour_ago, hour_ago))
    assert archive.sweep_orphans(gateway.engine, blobs) == 1
    assert sorted(blobs.digests()) == sorted([kept, fresh])
    blobs.put(b"a message being recorded right now")  # stored again: its time is refreshed
    assert blobs.path(fresh).stat().st_mtime > hour_ago
