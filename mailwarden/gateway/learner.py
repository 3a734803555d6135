"""Learned profiles keep learning: delivered mail is folded into them, saved in batches, and scanned against.

    learner = ProfileLearner(engine, context, batch=100, interval=10.0)
    learner.observe(message, when)      # a thread of the scan pool, after the message was accepted for delivery
    await learner.run(stop)             # saves every ``batch`` messages or ``interval`` seconds, and at the end

``observe`` folds the message (as the mailbox will see it: our Authentication-Results and Received on top) into
a private ``Profiles`` of what was learned since the last save (``Profiles.observe``, the same as ``learn``).
What is learned: every message delivered as it is (verdict deliver), and a warned one only when all that is
wrong with it is that a known correspondent departs from its habits (``LEARNABLE_WARNINGS``; besides those,
only wording: ``content.*``), and it passed DMARC for its From domain: a partner's new Reply-To, new
infrastructure or new file host becomes its new normal, while a stranger borrowing a partner's name, a
lookalike or a bank change is never learned (learning those would teach the next attempt to pass).

A save merges that into the database (``Store.merge_profiles``: counts added, sets united, one transaction
that other gateway processes wait for) and gives the scan context a new ``Profiles`` holding the merged
profiles: a copy, never a change to the one scans are reading in other threads. Learning is best effort:
a failed save is logged and its batch dropped; mail is never held up by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import datetime

from sqlalchemy import Engine

from mailwarden.auth import AuthVerdict
from mailwarden.message import Message
from mailwarden.pipeline import Context, ScanResult
from mailwarden.profiles import Profiles
from mailwarden.signals import Verdict
from mailwarden.store.store import Store

log = logging.getLogger("mailwarden.gateway.learner")
LEARNABLE_WARNINGS = frozenset({"bec.reply_to_diversion", "bec.new_infrastructure", "bec.unfamiliar_file_host",
                                "header.reply_to_mismatch"})


def worth_learning(message: Message, result: ScanResult, auth: AuthVerdict, context: Context) -> bool:
    """Whether a message accepted for delivery may teach the profiles (see the module docstring)."""
    if result.verdict is Verdict.DELIVER:
        return True
    if result.verdict is not Verdict.WARN or message.from_ is None or auth.dmarc.result != "pass":
        return False
    known = context.profiles.domain(message.from_.registrable_domain) is not None or \
        context.org.partner_for_domain(message.from_.domain) is not None
    return known and all(s.id in LEARNABLE_WARNINGS or s.id.startswith("content.")
                         for s in result.signals if s.score > 0)


class ProfileLearner:
    """Delivered mail -> the stored profiles -> the scan context (see the module docstring)."""

    def __init__(self, engine: Engine, context: Context, *, batch: int, interval: float) -> None:
        self.engine = engine
        self.context = context
        self.batch = batch
        self.interval = interval
        self.saved = 0  # messages learned and saved, since start
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._learned = Profiles()
        self._pending = 0
        self._due: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def observe(self, message: Message, when: datetime) -> None:
        """Fold one delivered message into what is learned since the last save (thread-safe)."""
        with self._lock:
            if not self._learned.observe(message, when):
                return
            self._pending += 1
            due = self._pending >= self.batch
        if due and self._due is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: the final save takes it
                self._loop.call_soon_threadsafe(self._due.set)

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def save(self) -> int:
        """Merge what was learned into the database and into the scan context; returns how many messages."""
        with self._save_lock:
            with self._lock:
                learned, count = self._learned, self._pending
                self._learned, self._pending = Profiles(), 0
            if not count:
                return 0
            merged = Store(self.engine).merge_profiles(learned)
            current = self.context.profiles
            self.context.profiles = Profiles(senders={**current.senders, **merged.senders},
                                             domains={**current.domains, **merged.domains})
            self.saved += count
            return count

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._due = asyncio.Event()
        while not stop.is_set():
            waits = [asyncio.create_task(self._due.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waits, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
            self._due.clear()
            await self._save_logged()
        await self._save_logged()

    async def _save_logged(self) -> None:
        try:
            count = await asyncio.to_thread(self.save)
        except Exception:
            log.exception("saving learned profiles failed; this batch is not learned")
            return
        if count:
            log.debug("learned from %d delivered messages", count)
