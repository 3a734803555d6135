"""Messages for the gateway tests, and a few SMTP client helpers (smtplib, the real client)."""

from __future__ import annotations

import smtplib
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

RCPT = "bob@acme.gw.test"


def build(from_: str, subject: str, body: str, html: str | None = None, headers: tuple[str, ...] = (),
          to: str = RCPT, message_id: str = "<m1@gw.test>") -> bytes:
    lines = [f"From: {from_}", f"To: {to}", f"Subject: {subject}", f"Message-ID: {message_id}",
             "Date: Mon, 02 Mar 2026 10:00:00 +0000", "MIME-Version: 1.0", *headers]
    if html is None:
        lines += ["Content-Type: text/plain; charset=utf-8", "", body]
    else:
        lines += ['Content-Type: multipart/alternative; boundary="b1"', "", "--b1",
                  "Content-Type: text/plain; charset=utf-8", "", body, "--b1",
                  "Content-Type: text/html; charset=utf-8", "", html, "--b1--"]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def clean(message_id: str = "<clean@good.gw.test>") -> bytes:
    return build("Alice <alice@good.gw.test>", "Minutes", "The minutes from Tuesday are below.\r\nRegards",
                 message_id=message_id)


def warned() -> bytes:
    """Scores warn: a partner's name on a domain that is not the partner's."""
    return build("Globex Logistics <info@promo.gw.test>", "Delivery schedule",
                 "Hello,\r\nthe delivery schedule for next week is unchanged.\r\nRegards",
                 html="<html><body><p>Hello,</p><p>the delivery schedule for next week is unchanged.</p>"
                      "</body></html>")


def quarantined() -> bytes:
    """Scores quarantine: a partner's name on another domain announcing new bank details."""
    return build("Globex Logistics <info@promo.gw.test>", "Updated payment details",
                 "Hello,\r\nplease note our bank details changed. New IBAN: DE89370400440532013000.\r\nRegards",
                 html="<html><body><p>Hello,</p><p>please note our bank details changed. New IBAN: "
                      "DE89370400440532013000.</p></body></html>", message_id="<q1@promo.gw.test>")


def phish() -> bytes:
    """Scores reject: brand impersonation with a deceptive link to an IP address."""
    return build('"Microsoft account team" <no-reply@promo.gw.test>', "Unusual sign-in activity", "x",
                 html='<p>Dear user, verify your account within 24 hours or it will be suspended.</p>'
                      '<a href="http://192.0.2.9/o365/">https://login.microsoftonline.com</a>')


def spoof() -> bytes:
    """From a domain with DMARC p=reject, sent from an address its SPF does not allow, unsigned."""
    return build("Chief Executive <ceo@bank.gw.test>", "Wire today", "Please wire 10k today.",
                 message_id="<spoof@bank.gw.test>")


def client(port: int) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="client.gw.test", timeout=30)
    smtp.ehlo()
    return smtp


def send(port: int, mail_from: str, raw: bytes, recipients: tuple[str, ...] = (RCPT,)) -> tuple[int, bytes]:
    """One transaction; the reply to DATA (code, text)."""
    with client(port) as smtp:
        code, reply = smtp.mail(mail_from)
        assert code == 250, reply
        for rcpt in recipients:
            code, reply = smtp.rcpt(rcpt)
            assert code == 250, reply
        return smtp.data(raw)


def parsed(data: bytes) -> Message:
    return BytesParser(policy=compat32).parsebytes(data)
