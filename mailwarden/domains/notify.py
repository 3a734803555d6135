"""Telling partners that a lookalike of the organisation's own domain exists: by mail and webhook, once each.

    await notify_partners(engine, org)    # every own-domain lookalike a contact has not been told about yet

Who: every ``contacts`` address of every ``[[partners]]`` entry in org.toml, one message each, and the
``[notify] webhook`` once per lookalike. What: the template in ``data/notify.toml``, plain text, each value
cleaned of control and formatting characters, the lookalike written defanged (``marlowfenvvick[.]co[.]uk``)
and never as a link. How: SMTP through ``[notify] relay`` (else ``MAILWARDEN_RELAY``) from ``[notify] from``
(else ``mailwarden@<first own domain>``); the webhook gets a JSON POST with ``X-Mailwarden-Timestamp`` (Unix
seconds) and ``X-Mailwarden-Signature: sha256=<hex>``, the HMAC-SHA256 of ``timestamp + "." + body`` under the
secret in the environment variable ``[notify] webhook_secret_env``.

Once: each (lookalike, channel, recipient) is a row in ``lookalike_notifications``, claimed before sending
(state ``sending``) and then ``sent`` with the time, or ``failed`` with the error; a failed one (or a claim
older than ``RETRY_AFTER`` whose sender died) is tried again by the next call, a sent one never.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import string
import time
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mailwarden.config import NotifySettings, OrgConfig
from mailwarden.errors import ConfigError
from mailwarden.store.db import begin_write, store_errors
from mailwarden.store.models import Base
from mailwarden.urls import to_ascii_host

ENV_RELAY = "MAILWARDEN_RELAY"
RETRY_AFTER = timedelta(hours=1)
MAIL, WEBHOOK = "mail", "webhook"
SENDING, SENT, FAILED = "sending", "sent", "failed"
MAX_VALUE = 200
NOTIFICATIONS: Table = Base.metadata.tables["lookalike_notifications"]
LOOKALIKES: Table = Base.metadata.tables["lookalike_domains"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Notification:
    """One attempt to tell one recipient about one lookalike, and how it went."""

    lookalike: str
    protected_domain: str
    channel: str  # mail | webhook
    recipient: str
    partner: str
    state: str  # sent | failed
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"lookalike": self.lookalike, "imitates": self.protected_domain, "channel": self.channel,
                "recipient": self.recipient, "partner": self.partner, "state": self.state, "error": self.error}


@dataclass(frozen=True)
class OwnLookalike:
    """A lookalike of an own domain as the watch or a scan stored it."""

    domain: str
    protected_domain: str
    technique: str
    score: int
    first_seen: datetime
    mx: bool
    in_mail: bool  # seen in mail (rather than only registered)


# --- the message ---------------------------------------------------------------------------------------

@cache
def _template() -> dict[str, Any]:
    return tomllib.loads(resources.files("mailwarden").joinpath("data/notify.toml").read_text(encoding="utf-8"))


def clean(value: str, limit: int = MAX_VALUE) -> str:
    """A value safe to put in a plain-text mail or a header: no control, formatting (bidi) or line characters."""
    kept = "".join(ch if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp") else " " for ch in value)
    return " ".join(kept.split())[:limit]


def defang(domain: str) -> str:
    """A domain no mail program turns into a link: ``marlowfenvvick[.]co[.]uk``."""
    return clean(domain, 300).replace(".", "[.]")


def _fields(org: OrgConfig, lookalike: OwnLookalike, partner: str) -> dict[str, str]:
    template = _template()
    ascii_name, unicode_name = to_ascii_host(lookalike.domain)
    unicode_line = ""
    if unicode_name != ascii_name:
        unicode_line = f"    (shown in Unicode as {defang(unicode_name)}: its letters are not those of our name)\n"
    techniques: Mapping[str, str] = template["techniques"]
    return {
        "organization": clean(org.name) or clean(lookalike.protected_domain),
        "partner": clean(partner) or "a partner of ours",
        "own_domain": clean(lookalike.protected_domain),
        "lookalike": defang(ascii_name),
        "unicode_line": unicode_line,
        "how": template["how"]["mail" if lookalike.in_mail else "registered"],
        "technique": clean(techniques.get(lookalike.technique, lookalike.technique.replace("_", " "))),
        "mail_line": template["mx"]["yes" if lookalike.mx else "no"],
        "first_seen": lookalike.first_seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def sender_address(org: OrgConfig) -> str:
    return org.notify.from_ or (f"mailwarden@{org.domains[0]}" if org.domains else "mailwarden@localhost")


def render_mail(org: OrgConfig, lookalike: OwnLookalike, partner: str, contact: str,
                now: datetime | None = None) -> EmailMessage:
    """The warning to one partner contact (raises ValueError for an address that cannot be a header)."""
    fields = _fields(org, lookalike, partner)
    template = _template()["mail"]
    sender = sender_address(org)
    message = EmailMessage()
    message["From"] = formataddr((clean(org.name) or "Mailwarden", sender))
    message["To"] = contact
    message["Subject"] = clean(string.Template(template["subject"]).substitute(fields), 300)
    message["Date"] = format_datetime(now or _utcnow())
    message["Message-ID"] = make_msgid("lookalike", domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(string.Template(template["body"]).substitute(fields))
    return message


def webhook_body(org: OrgConfig, lookalike: OwnLookalike) -> bytes:
    ascii_name, unicode_name = to_ascii_host(lookalike.domain)
    payload = {"type": "lookalike.found", "organization": org.name, "lookalike": ascii_name,
               "lookalike_unicode": unicode_name, "defanged": defang(ascii_name),
               "imitates": lookalike.protected_domain, "technique": lookalike.technique, "score": lookalike.score,
               "first_seen": lookalike.first_seen.isoformat(), "mx": lookalike.mx,
               "how": "mail" if lookalike.in_mail else "registered"}
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``timestamp + "." + body``."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


# --- sending -----------------------------------------------------------------------------------------

def relay_address(settings: NotifySettings, relay: str | None = None,
                  environ: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """Where the mail goes: ``relay``, else ``[notify] relay``, else ``MAILWARDEN_RELAY``; None when none is set.
    Raises ConfigError for a value that is not ``host:port``."""
    env = os.environ if environ is None else environ
    text = (relay or settings.relay or env.get(ENV_RELAY, "")).strip()
    if not text:
        return None
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"notify relay: expected host:port with a port from 1 to 65535, got {text!r}")
    return host, int(port)


def notify_configured(settings: NotifySettings, relay: str | None = None,
                      environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(relay or settings.relay or env.get(ENV_RELAY) or settings.webhook)


async def _send_mails(address: tuple[str, int], messages: list[tuple[int, EmailMessage]],
                      timeout: float) -> dict[int, str]:
    """Each message through one SMTP session; the error per job ("" when accepted)."""
    import aiosmtplib

    errors: dict[int, str] = {}
    host, port = address
    try:
        async with aiosmtplib.SMTP(hostname=host, port=port, timeout=timeout) as smtp:
            for job, message in messages:
                try:
                    await smtp.send_message(message)
                    errors[job] = ""
                except aiosmtplib.SMTPResponseException as exc:
                    errors[job] = f"relay {host}:{port} answered {exc.code} {exc.message}"[:500]
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    errors[job] = f"relay {host}:{port} refused the recipient: {exc}"[:500]
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        reason = f"relay {host}:{port}: {exc or type(exc).__name__}"[:500]
        for job, _ in messages:
            errors.setdefault(job, reason)
    return errors


async def _post_webhook(url: str, secret: bytes, body: bytes, timeout: float) -> str:
    import httpx

    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "mailwarden",
               "X-Mailwarden-Timestamp": stamp, "X-Mailwarden-Signature": signature(secret, stamp, body)}
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"webhook: {exc or type(exc).__name__}"[:500]
    return "" if 200 <= response.status_code < 300 else f"webhook answered HTTP {response.status_code}"


# --- the record of who was told ------------------------------------------------------------------------

def _insert(connection: Connection) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(NOTIFICATIONS) if connection.dialect.name == "postgresql" else sqlite.insert(NOTIFICATIONS)


def _claim(engine: Engine, lookalike: OwnLookalike, channel: str, recipient: str, partner: str, now: datetime) -> bool:
    """Take the job unless it was sent, or someone else is sending it right now."""
    with store_errors("record a notification in", engine.url), begin_write(engine) as connection:
        statement = _insert(connection).values(
            lookalike=lookalike.domain, protected_domain=lookalike.protected_domain, partner=partner,
            channel=channel, recipient=recipient, state=SENDING, attempts=1, created_at=now, updated_at=now)
        if connection.execute(statement.on_conflict_do_nothing(index_elements=["lookalike", "channel", "recipient"])
                              .returning(NOTIFICATIONS.c.id)).first() is not None:
            return True
        retry = update(NOTIFICATIONS).where(
            NOTIFICATIONS.c.lookalike == lookalike.domain, NOTIFICATIONS.c.channel == channel,
            NOTIFICATIONS.c.recipient == recipient,
            or_(NOTIFICATIONS.c.state == FAILED,
                and_(NOTIFICATIONS.c.state == SENDING, NOTIFICATIONS.c.updated_at < now - RETRY_AFTER)),
        ).values(state=SENDING, attempts=NOTIFICATIONS.c.attempts + 1, updated_at=now)
        return bool(connection.execute(retry).rowcount)


def _finish(engine: Engine, results: Iterable[Notification], now: datetime) -> None:
    with store_errors("record a notification in", engine.url), begin_write(engine) as connection:
        for result in results:
            values: dict[str, Any] = {"state": result.state, "error": result.error, "updated_at": now}
            if result.state == SENT:
                values["notified_at"] = now
            connection.execute(update(NOTIFICATIONS).where(
                NOTIFICATIONS.c.lookalike == result.lookalike, NOTIFICATIONS.c.channel == result.channel,
                NOTIFICATIONS.c.recipient == result.recipient).values(**values))


def own_lookalikes(engine: Engine, domains: Iterable[str] | None = None) -> list[OwnLookalike]:
    """Stored lookalikes of own domains that were seen registered or in mail (``domains``: only these)."""
    query = select(LOOKALIKES).where(LOOKALIKES.c.kind == "own", LOOKALIKES.c.first_seen.is_not(None))
    if domains is not None:
        query = query.where(LOOKALIKES.c.domain.in_(list(domains)))
    with store_errors("read the lookalike watch from", engine.url), engine.connect() as connection:
        rows = list(connection.execute(query.order_by(LOOKALIKES.c.id)))
    return [OwnLookalike(r.domain, r.protected_domain, r.technique, r.score, r.first_seen, bool(r.mx),
                         r.mail_seen_at is not None) for r in rows]


def notifications(engine: Engine, lookalike: str | None = None) -> list[dict[str, Any]]:
    """Who was told about which lookalike, when (``notified_at``), and what failed."""
    query = select(NOTIFICATIONS).order_by(NOTIFICATIONS.c.id)
    if lookalike is not None:
        query = query.where(NOTIFICATIONS.c.lookalike == lookalike)
    with store_errors("read notifications from", engine.url), engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


async def notify_partners(engine: Engine, org: OrgConfig, *, lookalikes: Iterable[str] | None = None,
                          relay: str | None = None, environ: Mapping[str, str] | None = None,
                          now: Callable[[], datetime] = _utcnow) -> list[Notification]:
    """Tell every partner contact (and the webhook) about each own-domain lookalike they have not heard of.

    ``lookalikes`` limits it to these domains; ``relay`` overrides ``[notify] relay``. Returns what was tried."""
    env = os.environ if environ is None else environ
    settings = org.notify
    address = relay_address(settings, relay, env)
    found = await asyncio.to_thread(own_lookalikes, engine, lookalikes)
    contacts = [(partner.name, contact) for partner in org.partners for contact in partner.contacts]
    results: list[Notification] = []
    when = now()
    mails: list[tuple[int, EmailMessage]] = []
    jobs: list[tuple[OwnLookalike, str, str]] = []  # (lookalike, partner, contact) by job number
    for item in found:
        for partner, contact in contacts if address is not None else []:
            if not await asyncio.to_thread(_claim, engine, item, MAIL, contact, partner, when):
                continue
            try:
                message = render_mail(org, item, partner, contact, when)
            except (ValueError, TypeError) as exc:  # a contact that cannot be a header
                results.append(Notification(item.domain, item.protected_domain, MAIL, contact, partner, FAILED,
                                            f"cannot write the message: {exc}"[:500]))
                continue
            mails.append((len(jobs), message))
            jobs.append((item, partner, contact))
    if mails and address is not None:
        errors = await _send_mails(address, mails, settings.timeout)
        for number, (item, partner, contact) in enumerate(jobs):
            error = errors.get(number, "not sent")
            results.append(Notification(item.domain, item.protected_domain, MAIL, contact, partner,
                                        FAILED if error else SENT, error))
    if settings.webhook:
        secret = env.get(settings.webhook_secret_env, "")
        for item in found:
            if not await asyncio.to_thread(_claim, engine, item, WEBHOOK, settings.webhook, "", when):
                continue
            error = (await _post_webhook(settings.webhook, secret.encode("utf-8"), webhook_body(org, item),
                                         settings.timeout) if secret
                     else f"the webhook secret variable {settings.webhook_secret_env} is not set")
            results.append(Notification(item.domain, item.protected_domain, WEBHOOK, settings.webhook, "",
                                        FAILED if error else SENT, error))
    if results:
        await asyncio.to_thread(_finish, engine, results, now())
    return results
