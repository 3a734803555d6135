"""The archive: every accepted message kept (a compressed, content-addressed blob) and findable, for a while.

    add(connection, ...)                    in the transaction that accepts the message (its blob written before)
    search(engine, ArchiveQuery(...))       by sender, recipient, subject, domain, URL host, attachment hash, time
    get(engine, id) / raw(engine, blobs, id)
    remove(engine, blobs, who=..., ids=[...] | query=ArchiveQuery(...))   recorded in the removal log
    prune(engine, blobs, older_than=..., now=...)                          retention (``[gateway] archive_days``)
    sweep_orphans(engine, blobs)            blobs of transactions killed before they committed

Searching uses ``archive_indicators`` (kind, value), one row per thing a message can be found by, all lower case:
``sender`` (MAIL FROM and header From addresses), ``recipient``, ``domain`` (the From, MAIL FROM, Sender and
Reply-To domains and their registrable domains, and the registrable domains of links), ``url_host`` (every link
host, IP literals included) and ``attachment`` (SHA-256). The subject matches as a case-insensitive substring.
Filters combine with AND; results come newest first with cursor pagination.

A removal deletes the archive rows, their blobs when no other row shares them, and the message's copy still
held in quarantine (so nobody can release it any more); each removal is one row of the removal log (who,
when, the ids or the query, how many), written in the same transactions as the deletions. Retention pruning
is a removal by ``who="retention"`` that leaves quarantine alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, delete, func, insert, select, update

from mailwarden.errors import MailwardenError
from mailwarden.gateway.paging import DEFAULT_LIMIT, Page, page, row_dict
from mailwarden.gateway.queue import blob_needed
from mailwarden.gateway.spool import Spool
from mailwarden.message import Message
from mailwarden.store.blobs import BlobError, BlobStore
from mailwarden.store.db import begin_write
from mailwarden.store.models import Base
from mailwarden.urls import registrable_domain

ARCHIVE: Table = Base.metadata.tables["archive_messages"]
INDICATORS: Table = Base.metadata.tables["archive_indicators"]
REMOVALS: Table = Base.metadata.tables["archive_removals"]
QUARANTINE: Table = Base.metadata.tables["gateway_quarantine"]
MAX_PER_KIND = 200  # indicators of one kind kept per message (a message with 10,000 links stays findable by 200)
MAX_LOGGED_REFS = 1000  # message references listed in one removal log row (the count is always exact)
REMOVE_BATCH = 500
ORPHAN_AGE = 3600.0  # seconds: a blob younger than this may belong to a transaction still being recorded
MAX_SUBJECT = 1000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ArchiveError(MailwardenError):
    """Raised when an archive query is not valid (no criteria for a removal, a malformed hash)."""


@dataclass(frozen=True)
class ArchiveQuery:
    """Search criteria; empty fields are not used. ``since`` is inclusive, ``until`` exclusive."""

    sender: str | None = None
    recipient: str | None = None
    subject: str | None = None
    domain: str | None = None
    url_host: str | None = None
    attachment: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def normalised(self) -> ArchiveQuery:
        def clean(value: str | None) -> str | None:
            text = (value or "").strip()
            return text.lower().rstrip(".") if text else None

        attachment = clean(self.attachment)
        if attachment is not None and not _SHA256.match(attachment):
            raise ArchiveError("attachment: expected a SHA-256 digest (64 hexadecimal digits)")
        for name, value in (("since", self.since), ("until", self.until)):
            if value is not None and value.tzinfo is None:
                raise ArchiveError(f"{name} needs a timezone")
        subject = (self.subject or "").strip() or None
        return ArchiveQuery(sender=clean(self.sender), recipient=clean(self.recipient), subject=subject,
                            domain=clean(self.domain), url_host=clean(self.url_host), attachment=attachment,
                            since=self.since, until=self.until)

    @property
    def empty(self) -> bool:
        return not any(asdict(self).values())

    def to_dict(self) -> dict[str, Any]:
        """The criteria given, JSON-ready (for the removal log)."""
        return {key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in asdict(self).items() if value is not None}

    def indicator_filters(self) -> list[tuple[str, str]]:
        pairs = [("sender", self.sender), ("recipient", self.recipient), ("domain", self.domain),
                 ("url_host", self.url_host), ("attachment", self.attachment)]
        return [(kind, value) for kind, value in pairs if value]


@dataclass
class Removal:
    """What one removal did."""

    removal_id: int | None = None
    count: int = 0
    quarantined: int = 0  # held copies deleted with them
    blobs: int = 0  # blob files deleted (shared ones stay while another message needs them)
    refs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"removal_id": self.removal_id, "removed": self.count, "quarantine_deleted": self.quarantined}


# --- archiving ---------------------------------------------------------------------------------------

def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".") if "@" in address else ""


def indicators_of(message: Message, mail_from: str, recipients: Iterable[str]) -> list[tuple[str, str]]:
    """Every (kind, value) a message can be found by (see the module docstring)."""
    found: dict[str, dict[str, None]] = {kind: {} for kind in ("sender", "recipient", "domain", "url_host",
                                                                "attachment")}

    def add(kind: str, value: str) -> None:
        value = _CONTROL.sub("", value).strip().lower()
        if value and len(found[kind]) < MAX_PER_KIND and len(value) <= 1000:
            found[kind][value] = None

    def add_domain(domain: str) -> None:
        domain = domain.strip().lower().rstrip(".")
        if domain:
            add("domain", domain)
            add("domain", registrable_domain(domain) or domain)

    if mail_from:
        add("sender", mail_from)
        add_domain(_domain_of(mail_from))
    if message.from_ and message.from_.email:
        add("sender", message.from_.email)
    for address in (*message.from_all, *((message.sender,) if message.sender else ()), *message.reply_to):
        if address.domain:
            add_domain(address.domain)
    for recipient in recipients:
        add("recipient", recipient)
    for url in message.urls:
        if url.host:
            add("url_host", url.host)
        if url.registrable_domain and not url.is_ip:
            add("domain", url.registrable_domain)
    for attachment in message.attachments:
        add("attachment", attachment.sha256)
    return [(kind, value) for kind, values in found.items() for value in values]


def add(connection: Connection, *, ref: str, message: Message, received_at: datetime, client_ip: str, helo: str,
        mail_from: str, recipients: Sequence[str], verdict: str, score: int, signals: list[dict[str, Any]],
        actions: Sequence[str], blob: str, size: int) -> int:
    """Archive one accepted message (its blob is already stored); returns its archive id."""
    archive_id = int(connection.execute(insert(ARCHIVE).values(
        message_ref=ref, message_id=message.message_id[:1000], received_at=received_at, client_ip=client_ip,
        helo=helo[:1000], mail_from=mail_from, recipients=list(recipients),
        header_from=message.from_.email if message.from_ else "", subject=message.subject[:MAX_SUBJECT],
        verdict=verdict, score=score, signals=signals, actions=sorted(actions), blob=blob, size=size,
    ).returning(ARCHIVE.c.id)).scalar_one())
    rows = [{"archive_id": archive_id, "kind": kind, "value": value}
            for kind, value in indicators_of(message, mail_from, recipients)]
    if rows:
        connection.execute(insert(INDICATORS), rows)
    return archive_id


# --- searching ---------------------------------------------------------------------------------------

def _where(query: Select[Any], criteria: ArchiveQuery) -> Select[Any]:
    for kind, value in criteria.indicator_filters():
        query = query.where(ARCHIVE.c.id.in_(select(INDICATORS.c.archive_id).where(INDICATORS.c.kind == kind,
                                                                                     INDICATORS.c.value == value)))
    if criteria.subject:
        query = query.where(func.lower(ARCHIVE.c.subject).contains(criteria.subject.lower(), autoescape=True))
    if criteria.since is not None:
        query = query.where(ARCHIVE.c.received_at >= criteria.since)
    if criteria.until is not None:
        query = query.where(ARCHIVE.c.received_at < criteria.until)
    return query


def search(engine: Engine, criteria: ArchiveQuery, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> Page:
    """Archived messages matching every criterion, newest first."""
    criteria = criteria.normalised()
    with engine.connect() as connection:
        return page(connection, ARCHIVE, _where(select(ARCHIVE), criteria), cursor, limit)


def count(engine: Engine, criteria: ArchiveQuery) -> int:
    criteria = criteria.normalised()
    with engine.connect() as connection:
        return int(connection.execute(_where(select(func.count()).select_from(ARCHIVE), criteria)).scalar_one())


def get(engine: Engine, archive_id: int) -> dict[str, Any] | None:
    """One archived message's facts and the indicators it carried (grouped by kind)."""
    with engine.connect() as connection:
        row = connection.execute(select(ARCHIVE).where(ARCHIVE.c.id == archive_id)).first()
        if row is None:
            return None
        carried: dict[str, list[str]] = {}
        for kind, value in connection.execute(select(INDICATORS.c.kind, INDICATORS.c.value)
                                              .where(INDICATORS.c.archive_id == archive_id)
                                              .order_by(INDICATORS.c.id)):
            carried.setdefault(kind, []).append(value)
    return {**row_dict(row), "indicators": carried}


def raw(engine: Engine, blobs: BlobStore, archive_id: int) -> bytes | None:
    """The archived message as it was received (None when there is no such archive entry)."""
    with engine.connect() as connection:
        digest = connection.execute(select(ARCHIVE.c.blob).where(ARCHIVE.c.id == archive_id)).scalar()
    if digest is None:
        return None
    return blobs.get(str(digest))


def displayable(row: dict[str, Any]) -> dict[str, Any]:
    """An archive row for display: the subject HTML-escaped, identifiers without control characters."""
    from mailwarden.gateway.quarantine import sanitise, without_controls

    shown: dict[str, Any] = {key: without_controls(str(row[key]))
                             for key in ("header_from", "mail_from", "message_id", "helo") if key in row}
    recipients = [without_controls(str(r)) for r in row.get("recipients", [])]
    return {**row, **shown, "recipients": recipients, "subject": sanitise(str(row.get("subject", "")), MAX_SUBJECT)}


# --- removal -----------------------------------------------------------------------------------------

def remove(engine: Engine, blobs: BlobStore, *, who: str, now: datetime, ids: Sequence[int] | None = None,
           query: ArchiveQuery | None = None, spool: Spool | None = None, quarantine: bool = True,
           log_empty: bool = True) -> Removal:
    """Remove archived messages by id or by query (at least one criterion) and log it (module docstring)."""
    if (ids is None) == (query is None):
        raise ArchiveError("remove by ids or by a query, not both or neither")
    if query is not None:
        query = query.normalised()
        if query.empty:
            raise ArchiveError("a removal by query needs at least one criterion")
        logged: dict[str, Any] = query.to_dict()
    else:
        logged = {"ids": sorted(set(ids or ()))}
    removal = Removal()
    wanted = sorted(set(ids or ()))
    while True:
        if query is not None:
            with engine.connect() as connection:
                batch = [r for (r,) in connection.execute(_where(select(ARCHIVE.c.id), query)
                                                          .order_by(ARCHIVE.c.id).limit(REMOVE_BATCH))]
        else:
            batch, wanted = wanted[:REMOVE_BATCH], wanted[REMOVE_BATCH:]
        if not batch:
            break
        done = _remove_batch(engine, blobs, batch, removal, who=who, now=now, logged=logged, spool=spool,
                             quarantine=quarantine)
        if query is not None and not done:
            break  # nothing matched any more (removed meanwhile by someone else)
    if removal.removal_id is None and log_empty:
        with begin_write(engine) as connection:  # a removal that found nothing is recorded all the same
            removal.removal_id = _log(connection, who=who, now=now, logged=logged)
    return removal


def _log(connection: Connection, *, who: str, now: datetime, logged: dict[str, Any]) -> int:
    return int(connection.execute(insert(REMOVALS).values(time=now, who=who, query=logged, count=0, message_refs=[])
                                  .returning(REMOVALS.c.id)).scalar_one())


def _remove_batch(engine: Engine, blobs: BlobStore, batch: list[int], removal: Removal, *, who: str, now: datetime,
                  logged: dict[str, Any], spool: Spool | None, quarantine: bool) -> int:
    held_refs: list[str] = []
    with begin_write(engine) as connection:
        rows = list(connection.execute(select(ARCHIVE.c.id, ARCHIVE.c.message_ref, ARCHIVE.c.blob)
                                       .where(ARCHIVE.c.id.in_(batch))))
        if not rows:
            return 0
        if removal.removal_id is None:
            removal.removal_id = _log(connection, who=who, now=now, logged=logged)
        found = [r.id for r in rows]
        refs = [r.message_ref for r in rows]
        connection.execute(delete(INDICATORS).where(INDICATORS.c.archive_id.in_(found)))
        connection.execute(delete(ARCHIVE).where(ARCHIVE.c.id.in_(found)))
        if quarantine:
            held = connection.execute(update(QUARANTINE).where(QUARANTINE.c.message_ref.in_(refs),
                                                               QUARANTINE.c.state == "held")
                                      .values(state="deleted", deleted_at=now).returning(QUARANTINE.c.message_ref))
            held_refs = [r for (r,) in held]
            removal.quarantined += len(held_refs)
        removal.count += len(rows)
        room = max(0, MAX_LOGGED_REFS - len(removal.refs))
        removal.refs += refs[:room]
        connection.execute(update(REMOVALS).where(REMOVALS.c.id == removal.removal_id)
                           .values(count=removal.count, message_refs=list(removal.refs)))
        digests = sorted({r.blob for r in rows})
        still = {d for (d,) in connection.execute(select(ARCHIVE.c.blob).where(ARCHIVE.c.blob.in_(digests))
                                                  .distinct())}
        unneeded_spool = [ref for ref in held_refs if not blob_needed(connection, ref)]
    for digest in digests:
        if digest not in still:
            try:
                removal.blobs += blobs.remove(digest)
            except BlobError:
                continue
    if spool is not None:
        for ref in unneeded_spool:
            spool.remove(ref)
    return len(rows)


def prune(engine: Engine, blobs: BlobStore, *, older_than: datetime, now: datetime) -> Removal:
    """Retention: remove what was received before ``older_than`` (quarantine is left alone)."""
    return remove(engine, blobs, who="retention", now=now, query=ArchiveQuery(until=older_than), quarantine=False,
                  log_empty=False)


def sweep_orphans(engine: Engine, blobs: BlobStore, *, older_than: float = ORPHAN_AGE) -> int:
    """Remove blob files no archive entry refers to and older than ``older_than`` seconds: written while a
    message was scanned by a process killed before it recorded the message (its sender sent it again). Walks
    the whole archive directory; the gateway does it at start-up, ``mailwarden messages prune --orphans`` on
    demand. Returns how many files went."""
    cutoff = time.time() - older_than
    removed = 0
    batch: list[str] = []

    def check() -> int:
        with engine.connect() as connection:
            known = {d for (d,) in connection.execute(select(ARCHIVE.c.blob).where(ARCHIVE.c.blob.in_(batch)))}
        gone = 0
        for digest in batch:
            path = blobs.path(digest)
            try:
                if digest not in known and path.stat().st_mtime <= cutoff:
                    path.unlink()
                    gone += 1
            except FileNotFoundError:
                continue
        batch.clear()
        return gone

    for digest in blobs.digests():
        batch.append(digest)
        if len(batch) >= REMOVE_BATCH:
            removed += check()
    if batch:
        removed += check()
    return removed


def list_removals(engine: Engine, *, since: datetime | None = None, until: datetime | None = None,
                  who: str | None = None, cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> Page:
    """The removal log, newest first."""
    query = select(REMOVALS)
    if since is not None:
        query = query.where(REMOVALS.c.time >= since)
    if until is not None:
        query = query.where(REMOVALS.c.time < until)
    if who:
        query = query.where(REMOVALS.c.who == who)
    with engine.connect() as connection:
        return page(connection, REMOVALS, query, cursor, limit)
