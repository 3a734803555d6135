"""The gateway end to end: real SMTP clients, a real next hop, real DNS, both databases."""

from __future__ import annotations

import json
import smtplib
import socket
import time
from pathlib import Path

import pytest
from gwharness import AUTHSERV_ID, Downstream, GatewayFactory, Recorder, RunningGateway
from gwmail import RCPT, build, clean, client, parsed, phish, quarantined, send, spoof, warned
from sqlalchemy import select, text
from typer.testing import CliRunner

from mailwarden.cli import app
from mailwarden.gateway import logs, quarantine
from mailwarden.gateway.queue import QUEUE
from mailwarden.gateway.server import open_engine


def test_clean_mail_is_relayed_with_our_headers_and_the_body_unchanged(gateway: RunningGateway,
                                                                        downstream: Recorder) -> None:
    raw = clean()
    code, reply = send(gateway.smtp_port, "alice@good.gw.test", raw)
    assert code == 250 and b"queued as" in reply
    [delivered] = downstream.wait_for(1)
    assert delivered.mail_from == "alice@good.gw.test" and delivered.recipients == [RCPT]
    message = parsed(delivered.data)
    [results] = message.get_all("Authentication-Results")
    assert results.startswith(f"{AUTHSERV_ID};") and "spf=pass" in results and "dmarc=pass" in results
    assert message["X-Mailwarden-Verdict"] == "deliver"
    assert message["X-Mailwarden-Score"] == "0"
    assert "auth.dmarc_pass=-2" in message["X-Mailwarden-Signals"]
    assert message["Received"].startswith("from client.gw.test ([127.0.0.1])")
    assert delivered.data.endswith(raw)  # our fields in front, the message itself byte for byte


def test_fields_that_claim_to_be_ours_are_removed(gateway: RunningGateway, downstream: Recorder) -> None:
    raw = build("Alice <alice@good.gw.test>", "Hi", "Hello", headers=(
        "X-Mailwarden-Verdict: deliver", "X-Mailwarden-Score: 0",
        f"Authentication-Results: {AUTHSERV_ID}; spf=pass; dmarc=pass",
        "Authentication-Results: upstream.example; spf=fail"))
    assert send(gateway.smtp_port, "alice@good.gw.test", raw)[0] == 250
    message = parsed(downstream.wait_for(1)[0].data)
    assert message.get_all("X-Mailwarden-Verdict") == ["deliver"]
    assert message.get_all("X-Mailwarden-Score") == ["0"]
    results = message.get_all("Authentication-Results")
    assert len(results) == 2 and results[1] == "upstream.example; spf=fail"


def test_warn_delivers_with_a_banner_in_text_and_html(gateway: RunningGateway, downstream: Recorder) -> None:
    assert send(gateway.smtp_port, "info@promo.gw.test", warned())[0] == 250
    message = parsed(downstream.wait_for(1)[0].data)
    assert message["X-Mailwarden-Verdict"] == "warn"
    plain, html = (part.get_payload(decode=True).decode() for part in message.get_payload())
    assert plain.startswith("-" * 72 + "\r\nCaution: this message may not be what it seems.\r\n")
    assert "Globex Logistics" in plain
    assert plain.endswith("\r\nHello,\r\nthe delivery schedule for next week is unchanged.\r\nRegards")
    assert html.startswith("<html><body><div style=")
    assert "<strong>Caution: this message may not be what it seems.</strong>" in html
    assert html.endswith("</div>\r\n<p>Hello,</p><p>the delivery schedule for next week is unchanged.</p>"
                         "</body></html>")


def test_phish_is_quarantined_listed_and_released_once(gateway: RunningGateway, downstream: Recorder,
                                                       tmp_path: Path, database_url: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert send(gateway.smtp_port, "info@promo.gw.test", quarantined())[0] == 250
    page = quarantine.list_held(gateway.engine)
    [held] = page.items
    assert held["verdict"] == "quarantine" and held["message_id"] == "<q1@promo.gw.test>"
    assert held["recipients"] == [RCPT] and held["dmarc"] == "none" and held["spf"] == "pass"
    assert any(s["id"] == "sender.display_name_partner" for s in held["signals"])

    monkeypatch.setenv("MAILWARDEN_DATABASE_URL", database_url)
    runner = CliRunner()
    result = runner.invoke(app, ["--data-dir", str(tmp_path / "data"), "quarantine", "list", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["message_id"] == "<q1@promo.gw.test>" and row["verdict"] == "quarantine"
    assert {"id", "score", "detail"} <= set(row["signals"][0])
    time.sleep(0.3)
    assert downstream.messages == []  # held, not delivered

    result = runner.invoke(app, ["--data-dir", str(tmp_path / "data"), "quarantine", "release", str(held["id"]),
                                 "--by", "alice"])
    assert result.exit_code == 0, result.output
    [delivered] = downstream.wait_for(1)
    message = parsed(delivered.data)
    assert message["X-Mailwarden-Verdict"] == "quarantine" and message["X-Mailwarden-Released"].startswith("by alice")
    assert delivered.data.endswith(quarantined())
    [release] = logs.list_releases(gateway.engine).items
    assert release["who"] == "alice" and release["message_id"] == "<q1@promo.gw.test>"
    assert release["spf"] == "pass" and release["dmarc"] == "none" and release["verdict"] == "quarantine"
    again = runner.invoke(app, ["--data-dir", str(tmp_path / "data"), "quarantine", "release", str(held["id"])])
    assert again.exit_code == 1 and "released, not held" in again.stderr


def test_dmarc_reject_spoof_is_refused_and_logged(gateway: RunningGateway, downstream: Recorder) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused, client(gateway.smtp_port) as smtp:
        smtp.sendmail("ceo@bank.gw.test", [RCPT], spoof())
    assert refused.value.smtp_code == 550
    assert refused.value.smtp_error.startswith(b"5.7.1 DMARC policy of bank.gw.test rejects")
    [entry] = logs.list_rejections(gateway.engine).items
    assert entry["reason"] == "dmarc" and entry["dmarc"] == "fail" and entry["client_ip"] == "127.0.0.1"
    assert entry["helo"] == "client.gw.test" and entry["mail_from"] == "ceo@bank.gw.test"
    assert entry["header_from"] == "ceo@bank.gw.test" and entry["recipients"] == [RCPT]
    assert entry["message_id"] == "<spoof@bank.gw.test>"
    assert logs.list_rejections(gateway.engine, reason="threat").items == []
    time.sleep(0.2)
    assert downstream.messages == [] and gateway.gateway.spool.refs() == []


def test_a_threat_over_the_reject_threshold_is_refused(gateway: RunningGateway, downstream: Recorder) -> None:
    code, reply = send(gateway.smtp_port, "no-reply@promo.gw.test", phish())
    assert code == 550 and reply.startswith(b"5.7.1 Message refused as a threat (")
    [entry] = logs.list_rejections(gateway.engine, reason="threat").items
    assert entry["verdict"] == "reject" and entry["score"] >= 80


def test_never_an_open_relay(gateway: RunningGateway, downstream: Recorder) -> None:
    with client(gateway.smtp_port) as smtp:
        assert smtp.mail("alice@good.gw.test")[0] == 250
        code, reply = smtp.rcpt("someone@elsewhere.example")
        assert (code, reply[:5]) == (550, b"5.7.1")
        assert smtp.rcpt("someone@[127.0.0.1]")[0] == 550
        assert smtp.rcpt("bob@acme.gw.test.evil.example")[0] == 550
        assert smtp.rcpt("bob@sub.acme.gw.test")[0] == 250  # our subdomains are ours


def test_recipients_per_message_are_limited(downstream: Recorder, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(max_recipients=2)
    with client(gateway.smtp_port) as smtp:
        smtp.mail("alice@good.gw.test")
        assert smtp.rcpt("a@acme.gw.test")[0] == 250
        assert smtp.rcpt("b@acme.gw.test")[0] == 250
        assert smtp.rcpt("c@acme.gw.test") == (452, b"4.5.3 Too many recipients")


def test_connections_per_client_are_limited(downstream: Recorder, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(max_connections_per_client=2)
    first, second = client(gateway.smtp_port), client(gateway.smtp_port)
    try:
        third = smtplib.SMTP()
        code, reply = third.connect("127.0.0.1", gateway.smtp_port)
        assert code == 421 and reply.startswith(b"4.7.0 Too many connections")
        third.close()
    finally:
        first.quit()
        second.quit()
    for _ in range(50):  # the slots free up as the sessions end
        probe = smtplib.SMTP()
        if probe.connect("127.0.0.1", gateway.smtp_port)[0] == 220:
            probe.quit()
            break
        probe.close()
        time.sleep(0.05)
    else:
        raise AssertionError("connections were not released")


def test_size_is_announced_and_enforced(downstream: Recorder, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(max_message_size=10_000)
    with client(gateway.smtp_port) as smtp:
        assert smtp.has_extn("size") and smtp.esmtp_features["size"] == "10000"
        assert smtp.mail("alice@good.gw.test", ["SIZE=20000"])[0] == 552


def test_long_lines_are_accepted_and_relayed_intact(gateway: RunningGateway, downstream: Recorder) -> None:
    raw = build("Alice <alice@good.gw.test>", "Report", "x" * 5000 + "\r\n" + "y" * 200_000 + "\r\nend")
    assert send(gateway.smtp_port, "alice@good.gw.test", raw)[0] == 250
    assert downstream.wait_for(1)[0].data.endswith(raw)


def _raw_transaction(port: int, data: bytes) -> bytes:
    """MAIL, RCPT, DATA and then exactly these bytes, as a smuggling client sends them; the replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        stream = sock.makefile("rb")
        while stream.readline()[3:4] == b"-":  # the whole greeting, as a client must
            pass
        for command in (b"EHLO client.gw.test", b"MAIL FROM:<alice@good.gw.test>", f"RCPT TO:<{RCPT}>".encode(),
                        b"DATA"):
            sock.sendall(command + b"\r\n")
            line = stream.readline()
            while line[3:4] == b"-":
                line = stream.readline()
        assert line.startswith(b"354")
        sock.sendall(data)
        replies = stream.readline()
        sock.sendall(b"QUIT\r\n")
        return replies + stream.read()


@pytest.mark.parametrize("trick", [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r\n"])
def test_smtp_smuggling_is_refused(gateway: RunningGateway, downstream: Recorder, trick: bytes) -> None:
    head = b"From: Alice <alice@good.gw.test>\r\nTo: bob@acme.gw.test\r\nSubject: hi\r\n\r\nTesting"
    smuggled = (b"MAIL FROM:<ceo@bank.gw.test>\r\nRCPT TO:<bob@acme.gw.test>\r\nDATA\r\n"
                b"From: ceo@bank.gw.test\r\n\r\nSMUGGLED\r\n")
    replies = _raw_transaction(gateway.smtp_port, head + trick + smuggled + b"\r\n.\r\n")
    assert replies.startswith(b"550 5.5.2"), replies
    assert replies.count(b"250") == 0 and b"221" in replies
    time.sleep(0.2)
    assert downstream.messages == []
    [entry] = logs.list_rejections(gateway.engine, reason="protocol").items
    assert entry["header_from"] == "alice@good.gw.test"


def test_an_internal_failure_answers_451_and_keeps_nothing(gateway: RunningGateway, downstream: Recorder) -> None:
    assert gateway.engine is not None
    with gateway.engine.begin() as connection:
        connection.execute(text("ALTER TABLE gateway_queue RENAME TO gateway_queue_away"))
    try:
        code, reply = send(gateway.smtp_port, "alice@good.gw.test", clean())
    finally:
        with gateway.engine.begin() as connection:
            connection.execute(text("ALTER TABLE gateway_queue_away RENAME TO gateway_queue"))
    assert (code, reply) == (451, b"4.3.0 Temporary failure, please try again later")
    assert gateway.gateway.spool.refs() == []
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250  # and it recovers
    downstream.wait_for(1)


def test_a_restart_delivers_what_was_pending_exactly_once(start_gateway: GatewayFactory, downstream_port: int,
                                                          tmp_path: Path, database_url: str) -> None:
    first = start_gateway()  # the next hop is down: nothing listens on its port yet
    for n in range(3):
        assert send(first.smtp_port, "alice@good.gw.test", clean(f"<r{n}@good.gw.test>"))[0] == 250
    time.sleep(0.3)
    assert first.engine is not None
    with first.engine.connect() as connection:
        states = [r.state for r in connection.execute(select(QUEUE.c.state))]
    assert len(states) == 3 and set(states) <= {"pending", "delivering"}  # retrying against a closed port
    first.stop()


    recorder = Recorder()
    controller = Downstream(recorder, hostname="127.0.0.1", port=downstream_port)
    controller.start()
    try:
        start_gateway()
        delivered = recorder.wait_for(3)
        time.sleep(0.3)
        ids = sorted(parsed(d.data)["Message-ID"] for d in recorder.messages)
        assert ids == ["<r0@good.gw.test>", "<r1@good.gw.test>", "<r2@good.gw.test>"] and len(delivered) == 3
    finally:
        controller.stop()
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = list(connection.execute(select(QUEUE.c.state, QUEUE.c.attempts)))
    finally:
        engine.dispose()
    assert {r.state for r in rows} == {"delivered"} and all(r.attempts >= 2 for r in rows)
    assert list((tmp_path / "data" / "spool").glob("*.eml")) == []


def test_a_refused_recipient_gets_the_sender_a_dsn(gateway: RunningGateway, downstream: Recorder) -> None:
    downstream.refuse["gone@acme.gw.test"] = "550 5.1.1 No such user"
    code, _ = send(gateway.smtp_port, "alice@good.gw.test", clean(), recipients=(RCPT, "gone@acme.gw.test"))
    assert code == 250
    first, dsn = downstream.wait_for(2)
    assert first.recipients == [RCPT]
    assert dsn.mail_from == "<>" and dsn.recipients == ["alice@good.gw.test"]
    report = parsed(dsn.data)
    assert report.get_content_type() == "multipart/report"
    status = report.get_payload()[1].get_payload()[1]
    assert status["Final-Recipient"] == "rfc822; gone@acme.gw.test" and status["Status"] == "5.1.1"
    assert gateway.engine is not None
    with gateway.engine.connect() as connection:  # a retry of the failed entry goes to the refused recipient only
        failed = connection.execute(select(QUEUE.c.recipients).where(QUEUE.c.state == "failed")).scalars().all()
    assert [list(r) for r in failed] == [["gone@acme.gw.test"]]


def test_a_temporary_failure_is_retried_with_backoff(gateway: RunningGateway, downstream: Recorder) -> None:
    downstream.fail_data.append("451 4.3.0 try later")
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    downstream.wait_for(1)
    assert gateway.engine is not None
    deadline = time.monotonic() + 10  # the worker records the delivery just after the downstream's 250
    while True:
        with gateway.engine.connect() as connection:
            [row] = connection.execute(select(QUEUE.c.state, QUEUE.c.attempts, QUEUE.c.last_error))
        if row.state == "delivered" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (row.state, row.attempts) == ("delivered", 2)


def _self_signed(directory: Path) -> tuple[str, str]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, AUTHSERV_ID)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_starttls_with_the_configured_certificate(downstream: Recorder, start_gateway: GatewayFactory,
                                                  tmp_path: Path) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    gateway = start_gateway(tls_cert=cert, tls_key=key)
    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False
    with client(gateway.smtp_port) as smtp:
        assert smtp.has_extn("starttls")
        assert smtp.starttls(context=context)[0] == 220
        smtp.ehlo()
        smtp.sendmail("alice@good.gw.test", [RCPT], clean())
    received = parsed(downstream.wait_for(1)[0].data)["Received"]
    assert "with ESMTPS id" in received
