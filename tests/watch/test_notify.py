"""Partner notification: mail received by a real SMTP server (aiosmtpd), a signed webhook received by a local
HTTP server, once per lookalike per contact, with a record of who was told when."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from auth.dnsserver import free_port
from watchharness import CONTACTS, IDN_LOOKALIKE, OWN_REGISTERED, WEBHOOK_SECRET_ENV, SmtpServer, WebhookServer

from mailwarden.config import load_org
from mailwarden.dns import LiveResolver
from mailwarden.domains.notify import OwnLookalike, clean, defang, notifications, notify_partners, render_mail
from mailwarden.domains.watch import WatchReport, lookalikes_in, record_seen_in_mail, run_watch
from mailwarden.message import parse
from mailwarden.pipeline import Context, scan
from mailwarden.store import Store

NOTIFY = """
[notify]
relay = "{relay}"
from = "security@marlowfenwick.co.uk"
"""


def watch(store: Store, config: Path, server: str, **options: object) -> WatchReport:
    with LiveResolver(server, timeout=1.0) as resolver:
        return asyncio.run(run_watch(store.engine, load_org(config), resolver, **options))  # type: ignore[arg-type]


def messages(server: SmtpServer) -> list[EmailMessage]:
    with server.mailbox.lock:
        found = [email.message_from_bytes(m.content, policy=email.policy.default) for m in server.mailbox.messages]
    return [m for m in found if isinstance(m, EmailMessage)]


def test_partner_contacts_get_one_mail_per_own_lookalike(
        store: Store, org_toml: Callable[[str], Path], watch_dns: str, smtp_server: SmtpServer) -> None:
    config = org_toml(NOTIFY.format(relay=smtp_server.address))
    report = watch(store, config, watch_dns)
    assert len(report.notifications) == len(OWN_REGISTERED) * len(CONTACTS)
    assert {n.state for n in report.notifications} == {"sent"}
    received = messages(smtp_server)
    assert len(received) == len(OWN_REGISTERED) * len(CONTACTS)
    assert sorted(m["To"] for m in received) == sorted(CONTACTS * len(OWN_REGISTERED))
    for envelope in smtp_server.mailbox.messages:
        assert envelope.mail_from == "security@marlowfenwick.co.uk"
    bodies = {(m["To"], m["Subject"]): m.get_content() for m in received}
    for message in received:
        assert message["Auto-Submitted"] == "auto-generated"
        assert message.get_content_type() == "text/plain"
    texts = "\n".join(bodies.values())
    for domain in OWN_REGISTERED:  # always defanged, never a name a mail program would link
        assert defang(domain) in texts
        assert f"{domain}" not in texts.replace(defang(domain), "")
    assert "http" not in texts.lower() and "castlegatepolymer[.]co[.]uk" not in texts  # partner lookalikes: not told
    idn = next(body for (_, subject), body in bodies.items() if "xn--" in subject)
    assert defang(IDN_LOOKALIKE) in idn and "mfіnstruments[.]com" in idn
    marlow = next(body for (to, subject), body in bodies.items()
                  if to == "lucy.brennan@castlegatepolymers.co.uk" and "marlowfenvvick" in subject)
    assert "Castlegate Polymers Ltd" in marlow and "marlowfenwick.co.uk" in marlow
    assert "It has mail servers (MX records)" in marlow and "letters that look alike" in marlow

    rows = notifications(store.engine)
    assert len(rows) == len(received)
    assert all(r["state"] == "sent" and r["notified_at"] is not None and r["channel"] == "mail" for r in rows)
    assert {(r["lookalike"], r["recipient"]) for r in rows} == {(d, c) for d in OWN_REGISTERED for c in CONTACTS}

    again = watch(store, config, watch_dns)
    assert again.notifications == []
    assert len(messages(smtp_server)) == len(received)


def test_an_unreachable_relay_is_recorded_and_tried_again(
        sqlite_store: Store, org_toml: Callable[[str], Path], watch_dns: str, smtp_server: SmtpServer) -> None:
    config = org_toml(NOTIFY.format(relay=f"127.0.0.1:{free_port()}"))  # nothing listens there
    report = watch(sqlite_store, config, watch_dns)
    assert report.notifications and {n.state for n in report.notifications} == {"failed"}
    assert all("127.0.0.1" in n.error for n in report.notifications)
    assert {r["state"] for r in notifications(sqlite_store.engine)} == {"failed"}

    org = load_org(config)
    sent = asyncio.run(notify_partners(sqlite_store.engine, org, relay=smtp_server.address))
    assert len(sent) == len(OWN_REGISTERED) * len(CONTACTS) and {n.state for n in sent} == {"sent"}
    assert len(messages(smtp_server)) == len(sent)
    rows = notifications(sqlite_store.engine)
    assert all(r["state"] == "sent" and r["attempts"] == 2 and r["error"] == "" for r in rows)
    assert asyncio.run(notify_partners(sqlite_store.engine, org, relay=smtp_server.address)) == []


def test_the_webhook_gets_one_signed_post_per_lookalike(
        sqlite_store: Store, org_toml: Callable[[str], Path], watch_dns: str, webhook_server: WebhookServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, "s3cret")
    config = org_toml(f'\n[notify]\nwebhook = "{webhook_server.url}"\nwebhook_secret_env = "{WEBHOOK_SECRET_ENV}"\n')
    report = watch(sqlite_store, config, watch_dns)
    assert [n.channel for n in report.notifications] == ["webhook"] * len(OWN_REGISTERED)
    assert len(webhook_server.received) == len(OWN_REGISTERED)
    told = set()
    for hook in webhook_server.received:
        assert hook.path == "/hooks/lookalike"
        stamp = hook.headers["x-mailwarden-timestamp"]
        expected = hmac.new(b"s3cret", stamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
        assert hook.headers["x-mailwarden-signature"] == f"sha256={expected}"
        payload = json.loads(hook.body)
        assert payload["type"] == "lookalike.found" and payload["imitates"] in ("marlowfenwick.co.uk",
                                                                                 "mfinstruments.com")
        told.add(payload["lookalike"])
    assert told == set(OWN_REGISTERED)
    watch(sqlite_store, config, watch_dns)
    assert len(webhook_server.received) == len(OWN_REGISTERED)


def test_a_lookalike_seen_in_mail_is_recorded_and_told(
        sqlite_store: Store, org_toml: Callable[[str], Path], smtp_server: SmtpServer) -> None:
    org = load_org(org_toml(NOTIFY.format(relay=smtp_server.address)))
    raw = (b"From: Priya Raman <priya.raman@marlowfenvvick.co.uk>\r\nTo: ap@castlegatepolymers.co.uk\r\n"
           b"Subject: Urgent payment\r\nMessage-ID: <1@marlowfenvvick.co.uk>\r\n\r\nPlease pay today.\r\n")
    result = scan(parse(raw), Context.for_org(org))
    seen = lookalikes_in(result)
    assert [(s.domain, s.lookalike_of, s.kind) for s in seen] == [
        ("marlowfenvvick.co.uk", "marlowfenwick.co.uk", "own")]
    findings, told = asyncio.run(record_seen_in_mail(sqlite_store.engine, org, seen))
    assert [(f.domain, f.change) for f in findings] == [("marlowfenvvick.co.uk", "seen_in_mail")]
    assert len(told) == len(CONTACTS) and {n.state for n in told} == {"sent"}
    body = messages(smtp_server)[0].get_content()
    assert "used in mail sent to us" in body and "marlowfenvvick[.]co[.]uk" in body
    findings, told = asyncio.run(record_seen_in_mail(sqlite_store.engine, org, seen))
    assert findings == [] and told == []
    assert len(messages(smtp_server)) == len(CONTACTS)


def test_values_in_the_mail_are_cleaned() -> None:
    assert defang("marlowfenvvick.co.uk") == "marlowfenvvick[.]co[.]uk"
    assert clean("Acme\r\nBcc: victim@example.org\u202e\x00") == "Acme Bcc: victim@example.org"
    from mailwarden.config import org_from_dict

    org = org_from_dict({"organization": {"name": "Evil\r\nBcc: x@example.org\u202egnp.exe",
                                          "domains": ["marlowfenwick.co.uk"]}})
    lookalike = OwnLookalike("marlowfenvvick.co.uk", "marlowfenwick.co.uk", "homoglyph", 90,
                             datetime(2026, 3, 1, tzinfo=UTC), mx=False, in_mail=False)
    message = render_mail(org, lookalike, "Partner\nX-Injected: 1", "billing@ledgerline.io")
    assert "\n" not in str(message["From"]) and "\u202e" not in str(message["From"])
    assert message["X-Injected"] is None and message["Bcc"] is None
    body = message.get_content()
    assert "X-Injected: 1" not in body.splitlines() and "\u202e" not in body
    assert "no mail servers yet" in body and "2026-03-01 00:00 UTC" in body
    assert message["From"].addresses[0].addr_spec == "mailwarden@marlowfenwick.co.uk"
