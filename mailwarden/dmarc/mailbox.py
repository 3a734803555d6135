"""The gateway's report mailboxes: mail for ``[dmarc] report_addresses`` is ingested, not relayed.

    mailbox = ReportMailbox(ingest, spool, addresses)          # built by the gateway at start-up
    transaction, reply = await mailbox.divert(transaction, raw)  # called by the Receiver for every DATA

A transaction with no report recipient passes through untouched (``reply`` None). Otherwise the message
is first spooled (fsynced, like every message the gateway answers for), then stored by
``DmarcIngest.ingest_bytes`` in a worker thread (parsing and the database never run on the event loop),
and its spool file removed once the reports are committed. Then:

- ``reply`` is ``451 4.3.0`` when the spool or the database failed: nothing was kept, the sender retries
  (ingesting is idempotent, so a retry after a half-finished attempt stores each report once);
- a message that holds no report, or bad input (invalid XML, bad UTF-8, wrong compression, a limit), is
  accepted and kept aside whole with its errors in ``<data dir>/dmarc/invalid/`` (by the ingest), and a
  ``dmarc.input_kept_aside`` event says so: never lost, never bounced back to a reporting robot;
- ``reply`` is ``250`` when only report addresses were named; when others were too, ``reply`` is None and
  the transaction returned holds only the other recipients, for the usual scan and delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from mailwarden.dmarc.alerts import add_event
from mailwarden.gateway.replies import ACCEPTED, TEMPORARY_FAILURE
from mailwarden.gateway.spool import Spool, new_ref
from mailwarden.store.db import begin_write

if TYPE_CHECKING:
    from mailwarden.dmarc.ingest import DmarcIngest, IngestResult
    from mailwarden.gateway.receive import Transaction

log = logging.getLogger("mailwarden.dmarc")
KEPT_ASIDE_EVENT = "dmarc.input_kept_aside"


class ReportMailbox:
    """Takes the report recipients out of a transaction and ingests the message for them."""

    def __init__(self, ingest: DmarcIngest, spool: Spool, addresses: Iterable[str]) -> None:
        self.ingest = ingest
        self.spool = spool
        self.addresses = frozenset(a.strip().lower() for a in addresses if a.strip())

    def is_report_address(self, recipient: str) -> bool:
        return recipient.strip().strip("<>").lower() in self.addresses

    async def divert(self, transaction: Transaction, raw: bytes) -> tuple[Transaction, str | None]:
        """(the transaction left to relay, the SMTP reply when it is decided here); see the module docstring."""
        mine = [r for r in transaction.recipients if self.is_report_address(r)]
        if not mine:
            return transaction, None
        rest = replace(transaction, recipients=tuple(r for r in transaction.recipients if r not in mine))
        ref = new_ref()
        try:
            await asyncio.to_thread(self.spool.write, ref, raw)
        except OSError:
            log.exception("cannot spool a report message from %s", transaction.client_ip)
            return rest, TEMPORARY_FAILURE
        try:
            result = await asyncio.to_thread(self._ingest, ref, transaction, raw)
        except Exception:
            log.exception("report message %s from %s: cannot store it, answered 451", ref, transaction.client_ip)
            return rest, TEMPORARY_FAILURE
        finally:
            self.spool.remove(ref)
        log.info("report message %s from %s for %s: %d stored, %d already stored, %d errors%s", ref,
                 transaction.client_ip, ", ".join(mine), result.stored, result.duplicates, len(result.errors),
                 f", kept aside in {result.kept_aside}" if result.kept_aside else "")
        return rest, None if rest.recipients else ACCEPTED.format(ref=ref)

    def _ingest(self, ref: str, transaction: Transaction, raw: bytes) -> IngestResult:
        source = f"smtp://{transaction.client_ip}/{ref}"
        result = self.ingest.ingest_bytes(raw, source)
        if result.errors:
            with begin_write(self.ingest.engine) as connection:
                add_event(connection, KEPT_ASIDE_EVENT, {
                    "source": source, "mail_from": transaction.mail_from, "recipients": list(transaction.recipients),
                    "errors": [{"part": e.part, "error": e.error} for e in result.errors],
                    "stored": result.stored, "kept_aside": str(result.kept_aside) if result.kept_aside else None,
                }, self.ingest.clock())
        return result
