"""Telling a partner that its domain's DMARC is weak or missing: one plain-text mail per contact, once.

    notices = await notify_weak_partners(engine, org, postures)   # the flagged partner postures of a check

Who: the ``contacts`` of the ``[[partners]]`` entry owning the flagged domain. What: the template in
``data/dmarc_notice.toml`` with the DMARC, SPF and DKIM findings of the check, each value cleaned of control
and formatting characters. How: the lookalike watch's way (``mailwarden.domains.notify``): SMTP through
``[notify] relay`` (else ``MAILWARDEN_RELAY``) from ``[notify] from`` (else ``mailwarden@<first own domain>``),
all mails of one run in one session.

Once: every attempt is a ``dmarc.partner_notified`` event (domain, contact, the state told about such as
``weak_dmarc:monitoring``, sent or failed with the error). A contact is told about a state once; a failed
attempt is tried again at the next check, and a partner whose DMARC changes (say from missing to p=none)
is told again, about the new state.
"""

from __future__ import annotations

import asyncio
import os
import string
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Engine, select

from mailwarden.config import OrgConfig
from mailwarden.dmarc.alerts import add_event, table
from mailwarden.dmarc.posture import DomainPosture
from mailwarden.domains.notify import _send_mails, clean, relay_address, sender_address
from mailwarden.store.db import begin_write, store_errors

NOTICE_EVENT = "dmarc.partner_notified"
SENT, FAILED = "sent", "failed"
_NOTICE_CHECKS = ("dmarc", "spf", "dkim")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PartnerNotice:
    """One attempt to tell one partner contact about one domain's DMARC state."""

    domain: str
    partner: str
    recipient: str
    state_told: str  # <partner_flag>:<dmarc strength>, e.g. no_dmarc:missing
    state: str  # sent | failed
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "partner": self.partner, "recipient": self.recipient,
                "state_told": self.state_told, "state": self.state, "error": self.error}


def state_told(posture: DomainPosture) -> str:
    return f"{posture.partner_flag}:{posture.dmarc.get('strength')}"


@cache
def _template() -> dict[str, Any]:
    return tomllib.loads(resources.files("mailwarden").joinpath("data/dmarc_notice.toml").read_text(encoding="utf-8"))


def render_notice(org: OrgConfig, posture: DomainPosture, partner: str, contact: str,
                  now: datetime | None = None) -> EmailMessage:
    """The notice to one contact (raises ValueError for an address that cannot be a header)."""
    template = _template()
    strength = str(posture.dmarc.get("strength") or "missing")
    findings = [f for f in posture.findings if f.check in _NOTICE_CHECKS] or \
        [f for f in posture.findings if f.check == "partner"]
    when = now or _utcnow()
    fields = {
        "organization": clean(org.name) or (org.domains[0] if org.domains else "us"),
        "partner": clean(partner) or "a partner of ours",
        "domain": clean(posture.domain),
        "strength": clean(template["strength"].get(strength, strength)),
        "delivery": template["delivery"].get(posture.partner_flag or "", template["delivery"]["weak_dmarc"]),
        "checked": when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "findings": "".join(f"  - {clean(f.problem, 300)}.\n    What to change: {clean(f.fix, 300)}.\n"
                            for f in findings[:12]),
    }
    sender = sender_address(org)
    message = EmailMessage()
    message["From"] = formataddr((clean(org.name) or "Mailwarden", sender))
    message["To"] = contact
    message["Subject"] = clean(string.Template(template["mail"]["subject"]).substitute(fields), 300)
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid("dmarc-posture", domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(string.Template(template["mail"]["body"]).substitute(fields))
    return message


def told(engine: Engine, domains: Iterable[str]) -> set[tuple[str, str, str]]:
    """(domain, contact, state told) of every notice that was sent for these domains."""
    wanted = set(domains)
    events = table("events")
    query = select(events.c.payload).where(events.c.type == NOTICE_EVENT).order_by(events.c.id)
    with store_errors("read partner notices from", engine.url), engine.connect() as connection:
        found = set()
        for (payload,) in connection.execute(query):
            if payload.get("domain") in wanted and payload.get("state") == SENT:
                found.add((payload["domain"], payload.get("recipient", ""), payload.get("state_told", "")))
        return found


def _record(engine: Engine, notices: Iterable[PartnerNotice], now: datetime) -> None:
    with store_errors("record partner notices in", engine.url), begin_write(engine) as connection:
        for notice in notices:
            add_event(connection, NOTICE_EVENT, notice.to_dict(), now)


async def notify_weak_partners(engine: Engine, org: OrgConfig, postures: Iterable[DomainPosture], *,
                               relay: str | None = None, environ: Mapping[str, str] | None = None,
                               now: Callable[[], datetime] = _utcnow) -> list[PartnerNotice]:
    """Tell each contact of each flagged partner domain about its DMARC state, unless told already."""
    flagged = [p for p in postures if p.role == "partner" and p.partner_flag]
    env = os.environ if environ is None else environ
    address = relay_address(org.notify, relay, env)
    if not flagged or address is None:
        return []
    done = await asyncio.to_thread(told, engine, [p.domain for p in flagged])
    when = now()
    results: list[PartnerNotice] = []
    mails: list[tuple[int, EmailMessage]] = []
    jobs: list[PartnerNotice] = []
    for posture in flagged:
        owner = org.partner_for_domain(posture.domain)
        if owner is None:
            continue
        key = state_told(posture)
        for contact in owner.contacts:
            if (posture.domain, contact, key) in done:
                continue
            job = PartnerNotice(posture.domain, owner.name, contact, key, SENT)
            try:
                message = render_notice(org, posture, owner.name, contact, when)
            except (ValueError, TypeError) as exc:  # a contact that cannot be a header
                results.append(PartnerNotice(posture.domain, owner.name, contact, key, FAILED,
                                             f"cannot write the message: {exc}"[:500]))
                continue
            mails.append((len(jobs), message))
            jobs.append(job)
    if mails:
        errors = await _send_mails(address, mails, org.notify.timeout)
        for number, job in enumerate(jobs):
            error = errors.get(number, "not sent")
            results.append(PartnerNotice(job.domain, job.partner, job.recipient, job.state_told,
                                         FAILED if error else SENT, error))
    if results:
        await asyncio.to_thread(_record, engine, results, now())
    return results
