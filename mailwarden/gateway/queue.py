"""The delivery queue: accepted messages on their way to the next hop, never lost, retried with backoff.

    enqueue(connection, ...)          in the transaction that accepts the message (before its 250)
    claim(engine, worker, n, ...)     due entries for one worker: PostgreSQL ``FOR UPDATE SKIP LOCKED``,
                                      SQLite one writer at a time (``UPDATE ... RETURNING``); an entry
                                      whose worker died is claimed again when its lease runs out
    DeliveryWorker(...).run(stop)     delivers claimed entries with aiosmtplib
    record_journaled(engine, ...)     what the delivery journal (``journal.py``) noted, into the database

Outcomes per recipient: accepted (done), refused with 4xx or not reached (retried after
``retry_base * 2**attempts`` seconds, at most ``retry_max``; every entry of a destination that cannot be
reached waits as long), refused with 5xx or still undelivered after ``expire_after`` (failed, and the
sender gets a delivery status notification, RFC 3464, unless the message was itself a bounce).

Exactly once, as far as SMTP allows: the next hop's final 250 is noted in the delivery journal before
anything else happens (before QUIT, before the database commit that waits for the writer), and the journals
of dead processes are replayed before a worker claims anything, so a kill repeats only a delivery whose 250
was still on its way to us. That one remains (RFC 1047): every copy of an entry carries the same
``X-Mailwarden-Delivery-Id: <message ref>.<entry id>``, by which the mailbox can drop a repeat.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, TypeVar

import aiosmtplib
from sqlalchemy import Connection, Engine, Table, and_, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from mailwarden.gateway import journal
from mailwarden.gateway.actions import delivery_bytes, delivery_id_field, render_fields
from mailwarden.gateway.journal import DeliveryJournal, Notes
from mailwarden.gateway.paging import DEFAULT_LIMIT, Page, page
from mailwarden.gateway.settings import GatewaySettings, parse_hostport
from mailwarden.gateway.spool import Spool, new_ref
from mailwarden.store.db import begin_write
from mailwarden.store.models import Base

log = logging.getLogger("mailwarden.gateway.queue")

QUEUE: Table = Base.metadata.tables["gateway_queue"]
QUARANTINE: Table = Base.metadata.tables["gateway_quarantine"]
ACTIVE_STATES = ("pending", "delivering")
RECORD_ATTEMPTS = 4
JOURNAL_CHUNK = 500  # journaled entries applied per transaction
Clock = Callable[[], datetime]
_T = TypeVar("_T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class QueueEntry:
    id: int
    message_ref: str
    kind: str
    mail_from: str
    recipients: tuple[str, ...]
    destination: str
    prepend: str
    banner: str | None
    state: str
    attempts: int
    next_attempt_at: datetime
    expires_at: datetime
    created_at: datetime
    last_error: str

    @classmethod
    def from_row(cls, row: Any) -> QueueEntry:
        values = row._mapping
        return cls(**{name: values[name] for name in cls.__dataclass_fields__ if name != "recipients"},
                   recipients=tuple(values["recipients"]))


def enqueue(connection: Connection, *, ref: str, kind: str, mail_from: str, recipients: Iterable[str],
            destination: str, now: datetime, expire_after: float, prepend: str = "",
            banner: str | None = None) -> int:
    result = connection.execute(insert(QUEUE).values(
        message_ref=ref, kind=kind, mail_from=mail_from, recipients=list(recipients), destination=destination,
        prepend=prepend, banner=banner, state="pending", attempts=0, next_attempt_at=now,
        expires_at=now + timedelta(seconds=expire_after), created_at=now, updated_at=now, last_error="",
    ).returning(QUEUE.c.id))
    return int(result.scalar_one())


def claim(engine: Engine, worker: str, limit: int, lease: float, now: datetime) -> list[QueueEntry]:
    """Take up to ``limit`` due entries for this worker (see the module docstring)."""
    due = or_(and_(QUEUE.c.state == "pending", QUEUE.c.next_attempt_at <= now),
              and_(QUEUE.c.state == "delivering", QUEUE.c.lease_until < now))
    ids = select(QUEUE.c.id).where(due).order_by(QUEUE.c.next_attempt_at, QUEUE.c.id).limit(limit)
    if engine.dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    statement = (update(QUEUE).where(QUEUE.c.id.in_(ids.scalar_subquery()))
                 .values(state="delivering", claimed_by=worker, lease_until=now + timedelta(seconds=lease),
                         updated_at=now)
                 .returning(*QUEUE.c))
    with begin_write(engine) as connection:
        return [QueueEntry.from_row(row) for row in connection.execute(statement)]


def release_claims(engine: Engine, worker: str, now: datetime) -> int:
    """Give back what this worker had claimed when it stopped or died (at start-up: resume at once)."""
    with begin_write(engine) as connection:
        result = connection.execute(update(QUEUE).where(QUEUE.c.state == "delivering", QUEUE.c.claimed_by == worker)
                                    .values(state="pending", claimed_by=None, lease_until=None, updated_at=now))
        return int(result.rowcount)


def record_journaled(engine: Engine, spool: Spool, notes: Notes, now: datetime) -> int:
    """Record deliveries the journal noted and the database may not have: each entry still to deliver loses
    the recipients the next hop accepted, and is delivered when none is left (its message goes when nothing
    else needs it). Entries already recorded are left alone, so a note applied twice changes nothing.
    Returns how many entries changed."""
    changed = 0
    ids = sorted({entry_id for entry_id, _ in notes})
    for start in range(0, len(ids), JOURNAL_CHUNK):
        done: set[str] = set()
        query = (select(QUEUE.c.id, QUEUE.c.recipients, QUEUE.c.attempts, QUEUE.c.message_ref)
                 .where(QUEUE.c.id.in_(ids[start:start + JOURNAL_CHUNK]), QUEUE.c.state.in_(ACTIVE_STATES))
                 .order_by(QUEUE.c.id))
        with begin_write(engine) as connection:
            if connection.dialect.name == "postgresql":
                query = query.with_for_update()  # another node may record the same entry now
            for row in connection.execute(query).all():
                accepted = notes.get((row.id, row.message_ref), frozenset())
                left = [r for r in row.recipients if r not in accepted]
                if len(left) == len(row.recipients):
                    continue
                if left:
                    connection.execute(update(QUEUE).where(QUEUE.c.id == row.id)
                                       .values(recipients=left, updated_at=now))
                else:
                    _finish(connection, row.id, "delivered", now, attempts=row.attempts + 1, last_error="")
                    done.add(row.message_ref)
                changed += 1
            unneeded = [ref for ref in done if not blob_needed(connection, ref)]
        for ref in unneeded:
            spool.remove(ref)
    return changed


def replay_journals(engine: Engine, spool: Spool, now: datetime, skip: Path | None = None) -> int:
    """The delivery journals of processes that are gone (or rotated away), into the database; their files go.
    Returns how many entries changed."""
    changed = 0

    def apply(notes: Notes) -> None:
        nonlocal changed
        changed += record_journaled(engine, spool, notes, now)

    files = journal.replay(spool.journal, apply, skip=skip)
    if files:
        log.info("replayed %d delivery journals: %d queue entries recorded as delivered", files, changed)
    return changed


def _finish(connection: Connection, entry_id: int, state: str, now: datetime, **values: Any) -> None:
    connection.execute(update(QUEUE).where(QUEUE.c.id == entry_id).values(
        state=state, claimed_by=None, lease_until=None, updated_at=now, **values))


def _hold_back(connection: Connection, destination: str, retry_at: datetime, now: datetime) -> None:
    """Every pending entry for a destination that cannot be reached waits until ``retry_at`` too. On PostgreSQL
    rows other workers hold are skipped (``SKIP LOCKED``): they are being tried anyway, and waiting for them
    while holding this entry's row would deadlock two workers recording at the same time."""
    waiting = select(QUEUE.c.id).where(QUEUE.c.destination == destination, QUEUE.c.state == "pending",
                                       QUEUE.c.next_attempt_at < retry_at)
    if connection.dialect.name == "postgresql":
        waiting = waiting.with_for_update(skip_locked=True)
    connection.execute(update(QUEUE).where(QUEUE.c.id.in_(waiting.scalar_subquery()))
                       .values(next_attempt_at=retry_at, updated_at=now))


def blob_needed(connection: Connection, ref: str) -> bool:
    """Whether a queue entry still to deliver or a held quarantine entry needs this spooled message."""
    queued = connection.execute(select(QUEUE.c.id).where(QUEUE.c.message_ref == ref,
                                                         QUEUE.c.state.in_(ACTIVE_STATES)).limit(1)).first()
    held = connection.execute(select(QUARANTINE.c.id).where(QUARANTINE.c.message_ref == ref,
                                                            QUARANTINE.c.state == "held").limit(1)).first()
    return queued is not None or held is not None


def referenced_refs(engine: Engine) -> set[str]:
    """Every message reference the database knows (for the spool's orphan sweep)."""
    with engine.connect() as connection:
        refs = {r for (r,) in connection.execute(select(QUEUE.c.message_ref).distinct())}
        refs |= {r for (r,) in connection.execute(select(QUARANTINE.c.message_ref))}
    return refs


def list_entries(engine: Engine, *, states: Iterable[str] = (), cursor: str | None = None,
                 limit: int = DEFAULT_LIMIT) -> Page:
    query = select(QUEUE)
    wanted = list(states)
    if wanted:
        query = query.where(QUEUE.c.state.in_(wanted))
    with engine.connect() as connection:
        return page(connection, QUEUE, query, cursor, limit, exclude=("prepend",))


def retry_now(engine: Engine, entry_ids: Iterable[int] | None, now: datetime) -> int:
    """Make pending entries (all with None) due now; failed ones given by id are queued again."""
    with begin_write(engine) as connection:
        if entry_ids is None:
            statement = update(QUEUE).where(QUEUE.c.state == "pending")
        else:
            statement = update(QUEUE).where(QUEUE.c.id.in_(list(entry_ids)),
                                            QUEUE.c.state.in_(("pending", "failed")))
        result = connection.execute(statement.values(state="pending", next_attempt_at=now, updated_at=now,
                                                     expires_at=now + timedelta(days=1)
                                                     if entry_ids is not None else QUEUE.c.expires_at))
        return int(result.rowcount)


def drop(engine: Engine, spool: Spool, entry_id: int, now: datetime) -> bool:
    """Take an entry out of the queue for good (no delivery, no DSN); its message goes when unneeded."""
    with begin_write(engine) as connection:
        row = connection.execute(select(QUEUE.c.message_ref).where(QUEUE.c.id == entry_id,
                                                                   QUEUE.c.state.in_(ACTIVE_STATES))).first()
        if row is None:
            return False
        _finish(connection, entry_id, "dropped", now, last_error="dropped by an operator")
        needed = blob_needed(connection, row.message_ref)
    if not needed:
        spool.remove(row.message_ref)
    return True


# --- delivery status notifications ---------------------------------------------------------------

def build_dsn(*, reporting_mta: str, original_from: str, failures: dict[str, str], original: bytes,
              now: datetime) -> bytes:
    """An RFC 3464 report to the sender: which recipients failed and why, with the original's header."""
    boundary = f"=_mailwarden_{new_ref()}"
    head_end = original.find(b"\r\n\r\n")
    headers = original[: head_end + 2] if head_end >= 0 else original[:8192]
    human = ["This is the mail gateway at " + reporting_mta + ".", "",
             "Your message could not be delivered to these recipients:", ""]
    human += [f"  <{rcpt}>: {reason}" for rcpt, reason in failures.items()]
    status = [f"Reporting-MTA: dns; {reporting_mta}", f"Arrival-Date: {format_datetime(now)}", ""]
    for rcpt, reason in failures.items():
        code = "5.0.0" if not reason[:1].isdigit() else (reason.split()[1] if reason[4:5].isdigit() else "5.0.0")
        status += [f"Final-Recipient: rfc822; {rcpt}", "Action: failed", f"Status: {code}",
                   f"Diagnostic-Code: smtp; {' '.join(reason.split())[:900]}", ""]
    lines = [f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>", f"To: <{original_from}>",
             "Subject: Undelivered Mail Returned to Sender", f"Date: {format_datetime(now)}",
             f"Message-ID: {make_msgid(domain=reporting_mta)}", "Auto-Submitted: auto-replied", "MIME-Version: 1.0",
             f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"', "",
             f"--{boundary}", "Content-Type: text/plain; charset=us-ascii", "", *human, "",
             f"--{boundary}", "Content-Type: message/delivery-status", "", *status,
             f"--{boundary}", "Content-Type: text/rfc822-headers", ""]
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace") + headers + f"\r\n--{boundary}--\r\n".encode()


# --- the worker ----------------------------------------------------------------------------------

async def _quit(client: aiosmtplib.SMTP) -> None:
    """Say goodbye after the transaction; its outcome is settled, so no failure here may change it (a
    delivery taken for failed would be made again)."""
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()


@dataclass
class Outcome:
    delivered: list[str]
    temporary: dict[str, str]
    permanent: dict[str, str]
    unreachable: bool = False  # the destination itself failed: every entry for it waits


class DeliveryWorker:
    """Claims due entries and delivers them, ``settings.delivery_concurrency`` at a time."""

    def __init__(self, engine: Engine, spool: Spool, settings: GatewaySettings, authserv_id: str,
                 clock: Clock = utcnow, db_executor: concurrent.futures.Executor | None = None,
                 journal: DeliveryJournal | None = None) -> None:
        self.engine = engine
        self.journal = journal  # where accepted deliveries are noted the moment the next hop says so
        self.db_executor = db_executor  # where claims and outcomes are written (None: the loop's default pool)
        self.spool = spool
        self.settings = settings
        self.authserv_id = authserv_id
        self.clock = clock
        self.wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.delivery_concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._backlog = True  # more may be due than the last claim took: a finished delivery claims again
        # other processes' journals (a node that died, our own rotated files) are replayed this often, well
        # before the lease of what a dead node had claimed runs out and another node would deliver it again
        self.replay_interval = settings.lease / 4
        self._next_replay = time.monotonic() + self.replay_interval

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._backlog:
            self.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        worker = self.settings.worker_id
        while not stop.is_set():
            await self._replay_when_due()
            free = self.settings.delivery_concurrency - len(self._running)
            entries: list[QueueEntry] = []
            if free > 0:
                try:
                    entries = await self._db(claim, self.engine, worker, free, self.settings.lease,
                                             self.clock())
                except Exception:  # the database is away: try again, never crash the gateway
                    log.exception("claiming queue entries failed")
            self._backlog = free <= 0 or len(entries) == free
            for entry in entries:
                task = asyncio.create_task(self._deliver_one(entry))
                self._running.add(task)
                task.add_done_callback(self._finished)
            if entries and len(entries) == free:
                await asyncio.sleep(0)
                continue
            self.wake.clear()
            waits = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waits, timeout=self.settings.poll_interval, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
        if self._running:
            await asyncio.wait(self._running, timeout=self.settings.shutdown_grace)
        for _ in range(2):  # still going after the grace: given up (and retried after the restart); the second
            for task in list(self._running):  # cancel ends the QUIT that closing the connection tries
                task.cancel()
            if self._running:
                await asyncio.wait(self._running, timeout=1.0)
        await asyncio.to_thread(release_claims, self.engine, worker, self.clock())

    async def _replay_when_due(self) -> None:
        if time.monotonic() < self._next_replay:
            return
        self._next_replay = time.monotonic() + self.replay_interval
        skip = self.journal.path if self.journal is not None else None
        try:
            await self._db(replay_journals, self.engine, self.spool, self.clock(), skip)
        except Exception:  # the database is away: the files stay for the next time
            log.exception("replaying delivery journals failed")

    async def _db(self, function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self.db_executor, functools.partial(function, *args))

    async def _deliver_one(self, entry: QueueEntry) -> None:
        try:
            outcome = await self.attempt(entry)
            for attempt in range(RECORD_ATTEMPTS):  # a delivery not recorded would be made again: try hard
                try:
                    await self._db(self.record, entry, outcome)
                    break
                except DBAPIError:
                    if attempt == RECORD_ATTEMPTS - 1:
                        raise
                    log.warning("recording queue entry %s failed, trying again", entry.id, exc_info=True)
                    await asyncio.sleep(0.05 * 2 ** attempt)
        except Exception:  # left claimed: the lease runs out and the entry is tried again
            log.exception("delivering queue entry %s failed", entry.id)

    async def attempt(self, entry: QueueEntry) -> Outcome:
        try:
            raw = await asyncio.to_thread(self.spool.read, entry.message_ref)
        except FileNotFoundError:
            log.error("queue entry %s: spooled message %s is missing", entry.id, entry.message_ref)
            return Outcome([], {}, {r: "554 5.3.0 spooled message missing" for r in entry.recipients})
        prepend = entry.prepend + render_fields([delivery_id_field(entry.message_ref, entry.id)])
        data = delivery_bytes(raw, prepend, entry.banner, self.authserv_id)
        host, port = parse_hostport(entry.destination or self.settings.relay, "destination")
        options = [] if data.isascii() else ["BODY=8BITMIME"]
        async with self._slots:
            return await self._send(host, port, entry, data, options)

    async def _send(self, host: str, port: int, entry: QueueEntry, data: bytes, options: list[str]) -> Outcome:
        client = aiosmtplib.SMTP(hostname=host, port=port, timeout=self.settings.delivery_timeout,
                                 local_hostname=self.settings.server_name, start_tls=None, validate_certs=False)
        try:
            outcome = await self._transaction(client, host, port, entry, data, options)
            if outcome.delivered and self.journal is not None:
                # the final 250 is read: noted at once, in the same step of the loop, before QUIT and the commit
                self.journal.note(entry.id, entry.message_ref, outcome.delivered)
            if client.is_connected:
                await _quit(client)
            return outcome
        finally:
            client.close()  # also when cancelled (shutdown): no QUIT then

    async def _transaction(self, client: aiosmtplib.SMTP, host: str, port: int, entry: QueueEntry, data: bytes,
                           options: list[str]) -> Outcome:
        """One SMTP transaction with the next hop, its replies sorted per recipient."""
        recipients = list(entry.recipients)
        try:
            await client.connect()
            if options and not client.supports_extension("8bitmime"):
                options = []
            refused, _ = await client.sendmail(entry.mail_from, recipients, data, mail_options=options)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = {r.recipient: aiosmtplib.SMTPResponse(r.code, r.message) for r in exc.recipients}
        except aiosmtplib.SMTPResponseException as exc:
            reply = f"{exc.code} {exc.message}"
            if 500 <= exc.code < 600:
                return Outcome([], {}, dict.fromkeys(recipients, reply))
            return Outcome([], dict.fromkeys(recipients, reply), {}, unreachable=isinstance(
                exc, aiosmtplib.SMTPConnectResponseError | aiosmtplib.SMTPHeloError))
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()  # not reached or timed out: no QUIT either
            reason = f"{host}:{port} not reached: {type(exc).__name__}: {exc}"
            return Outcome([], dict.fromkeys(recipients, reason), {}, unreachable=True)
        outcome = Outcome([r for r in recipients if r not in refused], {}, {})
        for rcpt, response in refused.items():
            reply = f"{response.code} {response.message}"
            (outcome.permanent if 500 <= response.code < 600 else outcome.temporary)[rcpt] = reply
        return outcome

    def record(self, entry: QueueEntry, outcome: Outcome) -> None:
        """Write what happened: done, retry later (with backoff) or failed (with a DSN to the sender)."""
        now = self.clock()
        attempts = entry.attempts + 1
        delay = min(self.settings.retry_base * 2 ** (attempts - 1), self.settings.retry_max)
        retry_at = now + timedelta(seconds=delay)
        permanent = dict(outcome.permanent)
        temporary = dict(outcome.temporary)
        if temporary and retry_at > entry.expires_at:
            permanent.update({r: f"{reason} (gave up after {attempts} attempts)" for r, reason in temporary.items()})
            temporary = {}
        with begin_write(self.engine) as connection:
            if temporary:
                _finish(connection, entry.id, "pending", now, recipients=list(temporary), attempts=attempts,
                        next_attempt_at=retry_at, last_error="; ".join(temporary.values())[:2000])
                if outcome.unreachable:
                    _hold_back(connection, entry.destination, retry_at, now)
            elif permanent:  # only the refused recipients stay on it: a retry must not repeat the accepted ones
                _finish(connection, entry.id, "failed", now, recipients=list(permanent), attempts=attempts,
                        last_error="; ".join(permanent.values())[:2000])
            else:
                _finish(connection, entry.id, "delivered", now, attempts=attempts, last_error="")
            if permanent:
                self._bounce(connection, entry, permanent, now)
            needed = blob_needed(connection, entry.message_ref)
        if not needed:
            self.spool.remove(entry.message_ref)
        if outcome.delivered:
            log.info("queue entry %s delivered to %s for %s", entry.id, entry.destination, outcome.delivered)

    def _bounce(self, connection: Connection, entry: QueueEntry, failures: dict[str, str], now: datetime) -> None:
        if not entry.mail_from or entry.kind == "dsn":
            return  # never bounce a bounce
        try:
            original = self.spool.read(entry.message_ref)
        except FileNotFoundError:
            return  # nothing to report on: the message was never really accepted (see receive.py)
        dsn = build_dsn(reporting_mta=self.settings.server_name, original_from=entry.mail_from,
                        failures=failures, original=original, now=now)
        ref = new_ref()
        self.spool.write(ref, dsn)
        enqueue(connection, ref=ref, kind="dsn", mail_from="", recipients=[entry.mail_from],
                destination=self.settings.relay, now=now, expire_after=self.settings.expire_after)
