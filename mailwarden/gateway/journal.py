"""The delivery journal: a delivery the next hop has accepted is noted the moment its 250 is read, so that a
process killed before the database records the delivery does not make it again after the restart.

    journal = DeliveryJournal(spool.journal).open()   # this process's own file, locked while it lives
    journal.note(entry_id, ref, recipients)          # right after the next hop's final 250, before QUIT and commit
    replay(spool.journal, apply)                     # at start-up, before any claim: every file whose writer is
                                                     # gone is applied (``queue.record_journaled``), then removed

Why a file next to the database: between the next hop's 250 and the commit that marks the entry delivered,
the outcome waits for the database writer (on SQLite one thread, behind the accepting transactions, each
synced: tens of milliseconds under load, up to a few hundred). A kill in that window meant the entry was
claimed and delivered again. A journal line costs one ``os.write`` on the event loop, right after the reply.

No fsync, on purpose: when ``os.write`` returns the line is in the kernel's page cache, and a SIGKILL, an
exception or an OOM kill of the process cannot take it back; only a power cut or a kernel crash can, and
then the delivery is made again (a duplicate with the same ``X-Mailwarden-Delivery-Id``, which the mailbox
can drop), never lost. An fsync per delivery would put a disk flush back into the window this file shrinks.

Several processes (nodes sharing the spool directory): each writes its own file, named by a fresh reference
and its pid, and holds an exclusive ``flock`` on it while it lives (the file is created under a temporary
name, locked, then renamed into place, so no replay ever sees it unlocked). ``replay`` takes every file whose
lock it gets - its writer is gone, or rotated it away - applies it, and removes it only once that is
committed; a file still locked belongs to a live process, which records its own deliveries. A note says
which recipients of which queue entry (its id and its message reference: an id alone could be reused once
old rows are purged) the next hop accepted: applying it twice changes nothing, so two processes replaying
the same file at once do no harm.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from mailwarden.gateway.spool import new_ref

log = logging.getLogger("mailwarden.gateway.journal")

SUFFIX = ".journal"
ROTATE_AT = 4 * 1024 * 1024  # bytes (~60,000 notes): then a new file; the old one is replayed and removed
UNBORN_AGE = 600.0  # seconds: a temporary journal file this old was never renamed into place
Notes = dict[tuple[int, str], frozenset[str]]  # (queue entry id, message ref) -> the recipients accepted


class DeliveryJournal:
    """This process's journal file: append-only lines ``{"id": 42, "ref": "18ee...", "to": ["bob@acme.test"]}``."""

    def __init__(self, directory: Path, rotate_at: int = ROTATE_AT) -> None:
        self.directory = directory
        self.rotate_at = rotate_at
        self.path: Path | None = None
        self._fd = -1
        self._size = 0

    def open(self) -> DeliveryJournal:
        """Start a new file of our own, locked before it appears under its final name."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{new_ref()}-{os.getpid()}{SUFFIX}"
        temporary = self.directory / f".{name}.new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temporary, self.directory / name)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        self._fd, self.path, self._size = fd, self.directory / name, 0
        return self

    def note(self, entry_id: int, ref: str, recipients: Iterable[str]) -> None:
        """The next hop accepted this entry for these recipients. Never raises: the delivery is made, and a
        note that cannot be written only leaves the database commit as its record (as before the journal)."""
        accepted = list(recipients)
        if not accepted or self._fd < 0:
            return
        line = json.dumps({"id": entry_id, "ref": ref, "to": accepted}, ensure_ascii=False,
                          separators=(",", ":")) + "\n"
        try:
            self._size += os.write(self._fd, line.encode("utf-8"))  # one write of a short line, O_APPEND
            if self._size >= self.rotate_at:
                self._rotate()
        except OSError:
            log.exception("cannot note the delivery of queue entry %s in the delivery journal", entry_id)

    def _rotate(self) -> None:
        """A new file; the full one is unlocked and so replayed (and removed) by the next ``replay``."""
        old = self._fd
        self.open()
        os.close(old)

    def close(self) -> None:
        """Stop writing; the file, unlocked, is left for ``replay``."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def parse_notes(data: bytes, source: str = "journal") -> Notes:
    """The notes in a journal file's bytes, merged per entry; a line cut short (it cannot be, with one
    ``write`` per line, but a copied or damaged file may have one) is skipped with a warning."""
    notes: dict[tuple[int, str], set[str]] = {}
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key, recipients = (int(item["id"]), str(item["ref"])), [str(r) for r in item["to"]]
        except (ValueError, KeyError, TypeError):
            log.warning("%s line %d is not a delivery note, skipped: %r", source, number, line[:200])
            continue
        notes.setdefault(key, set()).update(recipients)
    return {key: frozenset(recipients) for key, recipients in notes.items()}


def replay(directory: Path, apply: Callable[[Notes], object], *, skip: Path | None = None) -> int:
    """Apply every journal file whose writer is gone, then remove it; returns how many files were replayed.

    ``apply`` commits the notes to the database and raises if it cannot: the file then stays for the next
    replay. ``skip``: this process's own file (on a filesystem where ``flock`` becomes a POSIX lock, as on
    NFS, a process would get the lock on its own file)."""
    if not directory.is_dir():
        return 0
    _remove_unborn(directory)
    replayed = 0
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        if path == skip:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # another process replayed it just now
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive and records its own deliveries
            notes = parse_notes(_read_all(fd), str(path))
            if notes:
                apply(notes)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # only after the commit, still holding the lock
            replayed += 1
        finally:
            os.close(fd)
    return replayed


def _remove_unborn(directory: Path) -> None:
    """Temporary files of an ``open`` that died before its rename (empty: no note is written before it);
    only old ones, so that a process opening its journal just now keeps its own."""
    cutoff = time.time() - UNBORN_AGE
    for path in directory.glob(f".*{SUFFIX}.new"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
