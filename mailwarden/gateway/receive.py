"""One SMTP DATA, decided inside the transaction: spool, authenticate, scan, decide, record, reply.

    reply = await receiver.receive(Transaction(client_ip, helo, mail_from, recipients, tls), raw)

1. the message is spooled durably (fsynced) first; its archive copy (``mailwarden.store.blobs``) is written
   while it is being decided;
2. live authentication with the client IP, HELO and MAIL FROM (``mailwarden.auth.evaluate_async``: DNS
   awaited on the loop, the checks in a thread), then the scan in the scan executor: the sync resolver
   blocks and scanning is CPU-bound, so neither ever runs on the event loop. The scan sees the message as
   the mailbox will (``as_received``: our Authentication-Results the only trusted ones, our Received hop on
   top) and gets the live verdict with it (``Context.with_auth``): authentication runs once per message;
3. the decision: reject (550 5.7.1 with a short reason) for a DMARC ``p=reject`` failure when
   ``[auth] enforce_dmarc`` is on, or a verdict of reject; otherwise deliver, deliver with a banner (warn)
   or quarantine, each recipient's action tightened by the recipient policy hook;
4. one database transaction records it (queue entries or the quarantine row, the archive entry, or the
   Rejection Log, and the events), and only then the client gets its 250. Anything failing on the way
   answers 451 4.3.0, so the sender retries: a message is never dropped silently;
5. a message accepted for delivery is handed to the profile learner if it may teach it (``learner.py``).

File writes run in ``io_executor`` and database transactions in ``db_executor``: pools of their own, so fsyncs
and commits never wait behind DNS or API work in the loop's default pool; on SQLite the database pool is one
thread, the one writer SQLite allows, so writers queue in order instead of backing off on the lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine

from mailwarden.auth import AuthVerdict, evaluate_async
from mailwarden.auth.results import link_domains_of
from mailwarden.authresults import parse_authentication_results
from mailwarden.config import OrgConfig
from mailwarden.gateway import archive, events, logs, quarantine
from mailwarden.gateway.actions import (
    Action,
    action_for,
    banner_reason,
    decision_fields,
    received_field,
    render_fields,
    signal_dicts,
)
from mailwarden.gateway.learner import ProfileLearner, worth_learning
from mailwarden.gateway.queue import Clock, enqueue, utcnow
from mailwarden.gateway.replies import ACCEPTED, REJECTED, TEMPORARY_FAILURE, reply_text
from mailwarden.gateway.settings import GatewaySettings
from mailwarden.gateway.spool import Spool, new_ref
from mailwarden.message import Envelope, Message, ReceivedHop, parse
from mailwarden.pipeline import Context, ScanResult, scan
from mailwarden.resolver import Resolver
from mailwarden.store.blobs import BlobStore
from mailwarden.store.db import begin_write

log = logging.getLogger("mailwarden.gateway")
_SEVERITY = {Action.DELIVER: 0, Action.BANNER: 1, Action.QUARANTINE: 2, Action.REJECT: 3}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Transaction:
    """What the SMTP session said before DATA."""

    client_ip: str
    helo: str
    mail_from: str
    recipients: tuple[str, ...]
    tls: bool = False


class RecipientPolicy(Protocol):
    """Per-recipient policy (user or group; later: human risk). May only tighten the action."""

    def action_for(self, recipient: str, action: Action, result: ScanResult) -> Action: ...


class Mailbox(Protocol):
    """Recipients whose mail the gateway keeps for itself (``mailwarden.dmarc.mailbox``: report addresses)."""

    async def divert(self, transaction: Transaction, raw: bytes) -> tuple[Transaction, str | None]: ...


class SamePolicy:
    """The default: every recipient gets the message's action."""

    def action_for(self, recipient: str, action: Action, result: ScanResult) -> Action:
        return action


@dataclass
class Decision:
    ref: str
    transaction: Transaction
    message: Message
    auth: AuthVerdict
    result: ScanResult
    auth_header: str = ""  # our Authentication-Results value
    groups: dict[Action, list[str]] = field(default_factory=dict)
    reject_reason: str = ""  # dmarc | threat
    reject_text: str = ""
    blob: str = ""  # the archive copy's content address
    blob_written: bool = False  # written by this transaction (not there before)

    @property
    def rejected(self) -> bool:
        return bool(self.reject_reason)


def _header_from(message: Message) -> str:
    return message.from_.email if message.from_ else ""


def _dkim_summary(auth: AuthVerdict) -> str:
    return ",".join(d.result for d in auth.dkim) or "none"


def as_received(message: Message, auth_header: str, transaction: Transaction, server_name: str) -> Message:
    """The message as the mailbox will see it: our Authentication-Results the only trusted ones (a sender's
    claiming our authserv-id never count) and our Received hop on top; everything else as parsed."""
    helo = " ".join(transaction.helo.split())[:255] or "unknown"
    text = f"from {helo} ([{transaction.client_ip}]) by {server_name}"
    hop = ReceivedHop(from_text=f"{helo} ([{transaction.client_ip}])", by_host=server_name,
                      ip=transaction.client_ip or None, raw=text)
    return dataclasses.replace(message, auth=(parse_authentication_results(auth_header),),
                               received=(hop, *message.received))


class Receiver:
    """Decides and records one message at a time per call; shared by every SMTP session."""

    def __init__(self, *, engine: Engine, spool: Spool, org: OrgConfig, context: Context, resolver: Resolver,
                 settings: GatewaySettings, executor: concurrent.futures.Executor, clock: Clock = utcnow,
                 on_enqueued: Callable[[], None] = lambda: None, policy: RecipientPolicy | None = None,
                 blobs: BlobStore | None = None, learner: ProfileLearner | None = None,
                 io_executor: concurrent.futures.Executor | None = None,
                 db_executor: concurrent.futures.Executor | None = None) -> None:
        self.engine = engine
        self.spool = spool
        self.org = org
        self.context = context
        self.resolver = resolver
        self.settings = settings
        self.executor = executor
        self.clock = clock
        self.on_enqueued = on_enqueued
        self.policy: RecipientPolicy = policy or SamePolicy()
        self.blobs = blobs  # the archive's blob store (None: nothing is archived)
        self.learner = learner
        self.io_executor = io_executor
        self.db_executor = db_executor
        self.mailbox: Mailbox | None = None  # set by the gateway when [dmarc] report_addresses are configured
        self.on_threat: Callable[[Any, Decision, datetime], None] | None = None  # [intel]: learn indicators
        self.in_flight = 0

    @property
    def authserv_id(self) -> str:
        return self.org.authserv_id or self.settings.server_name

    async def _io(self, function: Callable[..., _T], *args: Any, pool: concurrent.futures.Executor | None = None) -> _T:
        """A file write in the I/O pool (or a database transaction in ``pool``)."""
        return await asyncio.get_running_loop().run_in_executor(pool or self.io_executor,
                                                                functools.partial(function, *args))

    async def receive(self, transaction: Transaction, raw: bytes) -> str:
        """The SMTP reply to this DATA (see the module docstring)."""
        self.in_flight += 1
        ref = new_ref()
        archived: asyncio.Future[tuple[str, bool]] | None = None
        try:
            if self.mailbox is not None:  # report addresses: ingested, not relayed; the rest goes on below
                transaction, reply = await self.mailbox.divert(transaction, raw)
                if reply is not None:
                    return reply
            try:
                await self._io(self.spool.write, ref, raw)
            except OSError:
                log.exception("cannot spool a message from %s", transaction.client_ip)
                return TEMPORARY_FAILURE
            if self.blobs is not None:
                archived = asyncio.ensure_future(self._io(self.blobs.put, raw))
            try:
                decision = await self.decide(ref, transaction, raw)
                if archived is not None:
                    decision.blob, decision.blob_written = await archived
            except asyncio.CancelledError:  # the client hung up: nothing was recorded, nothing is kept
                self._discard(ref, archived)
                raise
            except Exception:
                log.exception("message %s from %s: internal failure, answered 451", ref, transaction.client_ip)
                self._discard(ref, archived)
                return TEMPORARY_FAILURE
            try:
                # A cancelled await leaves the thread running: its commit may still need the spool file,
                # which the sweep sets aside later if no row came to refer to it.
                reply = await self._io(self.record, decision, pool=self.db_executor)
            except Exception:
                log.exception("message %s from %s: cannot record, answered 451", ref, transaction.client_ip)
                self._discard(ref, archived)
                return TEMPORARY_FAILURE
            if decision.rejected:
                self._discard(ref, archived)
            elif decision.groups.keys() & {Action.DELIVER, Action.BANNER}:
                self.on_enqueued()
                if self.learner is not None and worth_learning(decision.message, decision.result, decision.auth,
                                                               self.context):
                    try:  # in the scan pool: folding a message in costs some CPU
                        self.executor.submit(self.learner.observe, decision.message, self.clock())
                    except RuntimeError:  # shutting down: the message is recorded, its reply must go out
                        log.info("message %s not learned: shutting down", decision.ref)
            return reply
        finally:
            self.in_flight -= 1

    def _discard(self, ref: str, archived: asyncio.Future[tuple[str, bool]] | None) -> None:
        """Nothing was accepted: the spool file goes, and the archive copy if this transaction wrote it."""
        self.spool.remove(ref)
        if archived is None:
            return
        if not archived.done():
            archived.cancel()
            return
        if not archived.cancelled() and archived.exception() is None:
            digest, written = archived.result()
            if written and self.blobs is not None:
                self.blobs.remove(digest)

    async def decide(self, ref: str, transaction: Transaction, raw: bytes) -> Decision:
        loop = asyncio.get_running_loop()
        envelope = Envelope(client_ip=transaction.client_ip, helo=transaction.helo or None,
                            mail_from=transaction.mail_from or None, rcpt_to=transaction.recipients)
        message = await loop.run_in_executor(self.executor, _parse, raw, envelope, self.org.authserv_id)
        auth = await evaluate_async(message.raw, envelope, self.resolver, self.org.auth,
                                    from_domain=message.from_.domain if message.from_ else "",
                                    link_domains=link_domains_of(message, self.org.domains),
                                    message_key=message.message_id)
        auth_header = auth.header(self.authserv_id)
        message = as_received(message, auth_header, transaction, self.settings.server_name)
        result = await loop.run_in_executor(self.executor, scan, message, self.context.with_auth(auth))
        decision = Decision(ref, transaction, message, auth, result, auth_header=auth_header)
        dmarc = auth.dmarc
        if self.org.auth.enforce_dmarc and dmarc.result == "fail" and dmarc.policy == "reject" \
                and not auth.arc_override:
            decision.reject_reason = "dmarc"
            decision.reject_text = (f"DMARC policy of {dmarc.record_domain or auth.from_domain} rejects "
                                    "this unauthenticated message")
            return decision
        action = action_for(result.verdict)
        if action is Action.REJECT:
            top = next((s.id for s in result.signals if s.score > 0), "policy")
            decision.reject_reason = "threat"
            decision.reject_text = f"Message refused as a threat ({top})"
            return decision
        for recipient in transaction.recipients:
            chosen = self.policy.action_for(recipient, action, result)
            if _SEVERITY[chosen] < _SEVERITY[action]:
                chosen = action  # a policy tightens, never loosens
            if chosen is Action.REJECT:
                chosen = Action.QUARANTINE  # after DATA one recipient cannot be refused alone
            decision.groups.setdefault(chosen, []).append(recipient)
        return decision

    def record(self, decision: Decision) -> str:
        """One transaction for everything the decision leaves behind; returns the SMTP reply."""
        now = self.clock()
        tx, message, auth, result = decision.transaction, decision.message, decision.auth, decision.result
        signals = signal_dicts(result)
        with begin_write(self.engine) as connection:
            payload = self._event(decision, now)
            events.add_event(connection, events.MESSAGE_SCANNED, payload, now)
            if decision.rejected or Action.QUARANTINE in decision.groups:
                events.add_event(connection, events.THREAT_DETECTED, {
                    **payload, "indicators": [{"type": i.type, "value": i.value, "source": i.source}
                                              for i in result.indicators]}, now)
                if self.on_threat is not None:  # indicators and sightings, in this same transaction
                    self.on_threat(connection, decision, now)
            if decision.rejected:
                logs.record_rejection(connection, time=now, client_ip=tx.client_ip, helo=tx.helo,
                                      mail_from=tx.mail_from, recipients=list(tx.recipients),
                                      header_from=_header_from(message), message_id=message.message_id,
                                      reason=decision.reject_reason, detail=decision.reject_text,
                                      dmarc=auth.dmarc.result, verdict=result.verdict.value, score=result.score,
                                      signals=signals)
                return REJECTED.format(reason=reply_text(decision.reject_text))
            auth_header = decision.auth_header
            fields = [received_field(helo=tx.helo, client_ip=tx.client_ip, by=self.settings.server_name,
                                     ref=decision.ref, tls=tx.tls, recipients=tx.recipients, when=now)]
            fields += decision_fields(auth_header, result.verdict.value, result.score, signals, self.authserv_id)
            for action, recipients in decision.groups.items():
                if action is Action.QUARANTINE:
                    quarantine.hold(connection, message_ref=decision.ref, message_id=message.message_id,
                                    blob=self.spool.blob_name(decision.ref), client_ip=tx.client_ip, helo=tx.helo,
                                    mail_from=tx.mail_from, recipients=recipients, header_from=_header_from(message),
                                    subject=message.subject[:1000], verdict=result.verdict.value,
                                    score=result.score, signals=signals, auth_results=auth_header,
                                    spf=auth.spf.result, dkim=_dkim_summary(auth), dmarc=auth.dmarc.result,
                                    received_at=now)
                    continue
                enqueue(connection, ref=decision.ref, kind="message", mail_from=tx.mail_from, recipients=recipients,
                        destination=self.settings.relay, now=now, expire_after=self.settings.expire_after,
                        prepend=render_fields(fields),
                        banner=banner_reason(result) if action is Action.BANNER else None)
            if decision.blob:
                archive.add(connection, ref=decision.ref, message=message, received_at=now, client_ip=tx.client_ip,
                            helo=tx.helo, mail_from=tx.mail_from, recipients=tx.recipients,
                            verdict=result.verdict.value, score=result.score, signals=signals,
                            actions=[a.value for a in decision.groups], blob=decision.blob, size=len(message.raw))
        return ACCEPTED.format(ref=decision.ref)

    def _event(self, decision: Decision, now: datetime) -> dict[str, Any]:
        tx, result = decision.transaction, decision.result
        return {"ref": decision.ref, "time": now.isoformat(), "message_id": decision.message.message_id,
                "client_ip": tx.client_ip, "mail_from": tx.mail_from, "recipients": list(tx.recipients),
                "header_from": _header_from(decision.message), "verdict": result.verdict.value,
                "score": result.score, "signals": [s.id for s in result.signals if s.score],
                "dmarc": decision.auth.dmarc.result,
                "action": "reject" if decision.rejected else sorted(a.value for a in decision.groups)}

    def record_protocol_rejection(self, transaction: Transaction, raw: bytes, detail: str) -> None:
        """A message refused before any scan (SMTP smuggling): into the Rejection Log all the same."""
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
        header_from = parseaddr(str(headers.get("From", "")))[1]
        with begin_write(self.engine) as connection:
            logs.record_rejection(connection, time=self.clock(), client_ip=transaction.client_ip,
                                  helo=transaction.helo, mail_from=transaction.mail_from,
                                  recipients=list(transaction.recipients), header_from=header_from,
                                  message_id=_one_line(str(headers.get("Message-ID", ""))), reason="protocol",
                                  detail=detail)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:1000]


def _parse(raw: bytes, envelope: Envelope, authserv_id: str | None) -> Message:
    return parse(raw, envelope, authserv_id=authserv_id)
