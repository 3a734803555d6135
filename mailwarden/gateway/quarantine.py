"""Quarantine: held messages, their sanitised preview, release (delivers the original) and deletion.

    hold(connection, ...)                   in the transaction that accepts the message
    list_held(engine, ..., recipient=None) / get(engine, id)
    preview(engine, spool, id)              text only, HTML-escaped, control characters removed
    release(engine, spool, id, who, ..., recipients=None)
                                            queues the original for delivery and writes the Release Log
    delete(engine, spool, id, who)          the message is gone; the row stays, marked deleted

A release or deletion happens once: the row changes from ``held`` only if it still is ``held``. Users see and
release their own messages only (``recipient=``, ``belongs_to``, ``recipients=``): a user's release delivers
the message to that user alone and leaves it held for its other recipients.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, insert, select, text, update

from mailwarden.errors import MailwardenError
from mailwarden.gateway.actions import decision_fields, received_field, render_fields
from mailwarden.gateway.logs import record_release
from mailwarden.gateway.paging import DEFAULT_LIMIT, Page, page, row_dict
from mailwarden.gateway.queue import blob_needed, enqueue
from mailwarden.gateway.spool import Spool
from mailwarden.message import parse
from mailwarden.store.db import begin_write
from mailwarden.store.models import Base

QUARANTINE: Table = Base.metadata.tables["gateway_quarantine"]
PREVIEW_CHARS = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class QuarantineError(MailwardenError):
    """Raised when a quarantined message cannot be released or deleted (unknown, or no longer held)."""


def hold(connection: Connection, **values: Any) -> int:
    result = connection.execute(insert(QUARANTINE).values(state="held", **values).returning(QUARANTINE.c.id))
    return int(result.scalar_one())


def _addressed_to(dialect: str, recipient: str) -> ColumnElement[bool]:
    """Rows whose recipients include this address (case-insensitive), in the dialect's JSON functions."""
    if dialect == "postgresql":
        sql = ("EXISTS (SELECT 1 FROM jsonb_array_elements_text(gateway_quarantine.recipients) AS r(value) "
               "WHERE lower(r.value) = :quarantine_rcpt)")
    else:
        sql = ("EXISTS (SELECT 1 FROM json_each(gateway_quarantine.recipients) AS r "
               "WHERE lower(r.value) = :quarantine_rcpt)")
    return text(sql).bindparams(quarantine_rcpt=recipient.strip().lower())  # type: ignore[return-value]


def belongs_to(row: dict[str, Any], user: str) -> bool:
    """Whether the held message was addressed to this user."""
    return user.strip().lower() in {str(r).lower() for r in row.get("recipients", [])}


def list_held(engine: Engine, *, state: str | None = "held", cursor: str | None = None,
              limit: int = DEFAULT_LIMIT, recipient: str | None = None) -> Page:
    query = select(QUARANTINE)
    if state:
        query = query.where(QUARANTINE.c.state == state)
    if recipient:
        query = query.where(_addressed_to(engine.dialect.name, recipient))
    with engine.connect() as connection:
        return page(connection, QUARANTINE, query, cursor, limit, exclude=("blob",))


def get(engine: Engine, quarantine_id: int) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(QUARANTINE).where(QUARANTINE.c.id == quarantine_id)).first()
    return row_dict(row, exclude=("blob",)) if row is not None else None


def sanitise(text: str, limit: int = PREVIEW_CHARS) -> str:
    """Text safe to show anywhere: no control or bidi characters, HTML-escaped, bounded."""
    return html.escape(without_controls(text, limit), quote=True)


def without_controls(text: str, limit: int = 1000) -> str:
    """Identifiers (addresses, Message-IDs) as they are, minus control and bidi characters, bounded."""
    return _CONTROL.sub("", text)[:limit]


def displayable(row: dict[str, Any], user: str | None = None) -> dict[str, Any]:
    """A quarantine row for display: the subject escaped, the identifiers without control characters; for a
    user, of the recipients only the user's own address."""
    shown: dict[str, Any] = {key: without_controls(row[key]) for key in ("header_from", "mail_from", "message_id")}
    if user is not None:
        shown["recipients"] = [r for r in row.get("recipients", []) if str(r).lower() == user.strip().lower()]
    return {**row, **shown, "subject": sanitise(row["subject"], 1000)}


def preview(engine: Engine, spool: Spool, quarantine_id: int, user: str | None = None) -> dict[str, Any] | None:
    """The stored facts plus a text-only, escaped preview of the held message (for a user: only the user's own)."""
    found = get(engine, quarantine_id)
    if found is None or (user is not None and not belongs_to(found, user)):
        return None
    text = ""
    if found["state"] == "held":
        try:
            message = parse(spool.read(found["message_ref"]))
            text = message.text
        except FileNotFoundError:
            text = ""
    return {**displayable(found, user), "preview": sanitise(text)}


def release(engine: Engine, spool: Spool, quarantine_id: int, *, who: str, destination: str, now: datetime,
            expire_after: float, authserv_id: str, server_name: str,
            recipients: Sequence[str] | None = None) -> dict[str, Any]:
    """Queue the original for delivery (with our headers, without a banner) and log who released it.

    ``recipients``: release for these of its recipients only (a user releasing their own copy); the message
    stays held for the others. None: for every recipient it is still held for."""
    with begin_write(engine) as connection:
        row = connection.execute(select(QUARANTINE).where(QUARANTINE.c.id == quarantine_id)
                                 .with_for_update()).first()
        if row is None:
            raise QuarantineError(f"no quarantined message {quarantine_id}")
        if row.state != "held":
            raise QuarantineError(f"quarantined message {quarantine_id} is {row.state}, not held")
        wanted = None if recipients is None else {r.strip().lower() for r in recipients}
        chosen = [r for r in row.recipients if wanted is None or r.lower() in wanted]
        remaining = [r for r in row.recipients if r not in chosen]
        if not chosen:
            asked = ", ".join(sorted(wanted or ()))
            raise QuarantineError(f"quarantined message {quarantine_id} is not held for {asked}")
        values: dict[str, Any] = {"recipients": remaining} if remaining else {
            "state": "released", "released_at": now, "released_by": who}
        changed = connection.execute(update(QUARANTINE).where(QUARANTINE.c.id == quarantine_id,
                                                              QUARANTINE.c.state == "held").values(**values))
        if changed.rowcount != 1:
            raise QuarantineError(f"quarantined message {quarantine_id} is no longer held")
        fields = [received_field(helo=row.helo, client_ip=row.client_ip, by=server_name, ref=row.message_ref,
                                 tls=False, recipients=chosen, when=row.received_at)]
        fields += decision_fields(row.auth_results, row.verdict, row.score, row.signals, authserv_id)
        fields.append(("X-Mailwarden-Released", f"by {_token(who)}; {now.isoformat()}"))
        entry = enqueue(connection, ref=row.message_ref, kind="release", mail_from=row.mail_from,
                        recipients=chosen, destination=destination, now=now, expire_after=expire_after,
                        prepend=render_fields(fields))
        record_release(connection, time=now, who=who, quarantine_id=row.id, message_ref=row.message_ref,
                       message_id=row.message_id, mail_from=row.mail_from, header_from=row.header_from,
                       recipients=chosen, verdict=row.verdict, score=row.score, signals=row.signals,
                       spf=row.spf, dkim=row.dkim, dmarc=row.dmarc)
    return {"id": quarantine_id, "state": "held" if remaining else "released", "queue_id": entry,
            "recipients": chosen}


def delete(engine: Engine, spool: Spool, quarantine_id: int, *, now: datetime) -> None:
    with begin_write(engine) as connection:
        row = connection.execute(select(QUARANTINE).where(QUARANTINE.c.id == quarantine_id)).first()
        if row is None:
            raise QuarantineError(f"no quarantined message {quarantine_id}")
        changed = connection.execute(update(QUARANTINE).where(QUARANTINE.c.id == quarantine_id,
                                                              QUARANTINE.c.state == "held")
                                     .values(state="deleted", deleted_at=now))
        if changed.rowcount != 1:
            raise QuarantineError(f"quarantined message {quarantine_id} is {row.state}, not held")
        needed = blob_needed(connection, row.message_ref)
    if not needed:
        spool.remove(row.message_ref)


def _token(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._:+\-]", "_", text)[:100] or "unknown"
