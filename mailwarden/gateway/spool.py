"""The durable spool: a message is on disk, fsynced, before the gateway answers for it.

    spool = Spool(data_dir / "spool")
    spool.write(ref, raw)     # temp file, fsync, rename, fsync the directory
    spool.read(ref); spool.remove(ref); spool.refs()

Every accepted message stays here (one file per message, named by its reference) until nothing needs it
any more: delivered to every recipient, or released or deleted from quarantine. Files the database knows
nothing about are the messages of transactions that never got their 250 (the process died first): the
sender retries those, so ``sweep`` moves them aside (``orphaned/``) instead of delivering them twice.
``journal/`` holds the delivery journals: which entries the next hop accepted, noted before the database
records it (``journal.py``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path

SUFFIX = ".eml"


def new_ref() -> str:
    """A message reference: time-ordered, unique, safe as a file name."""
    return f"{time.time_ns():x}{secrets.token_hex(6)}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _valid(ref: str) -> bool:
    return bool(ref) and all(c in "0123456789abcdef" for c in ref)


class Spool:
    """Message files under one directory, written so that a power cut after ``write`` keeps them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tmp = directory / "tmp"
        self.orphaned = directory / "orphaned"
        self.journal = directory / "journal"  # the delivery journals (``journal.py``)

    def create(self) -> Spool:
        for path in (self.directory, self.tmp, self.orphaned, self.journal):
            path.mkdir(parents=True, exist_ok=True)
        return self

    def path(self, ref: str) -> Path:
        if not _valid(ref):
            raise ValueError(f"not a message reference: {ref!r}")
        return self.directory / f"{ref}{SUFFIX}"

    def blob_name(self, ref: str) -> str:
        """The path stored in the database, relative to the data dir."""
        return f"{self.directory.name}/{ref}{SUFFIX}"

    def write(self, ref: str, raw: bytes) -> Path:
        """Write the message durably: data and directory entry are on disk when this returns."""
        final = self.path(ref)
        temporary = self.tmp / f"{ref}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(raw)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, final)
        _fsync_dir(self.directory)
        return final

    def read(self, ref: str) -> bytes:
        return self.path(ref).read_bytes()

    def exists(self, ref: str) -> bool:
        return self.path(ref).exists()

    def remove(self, ref: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(ref).unlink()

    def refs(self) -> list[str]:
        return sorted(p.name.removesuffix(SUFFIX) for p in self.directory.glob(f"*{SUFFIX}"))

    def sweep(self, known: Iterable[str], older_than: float = 0.0) -> list[str]:
        """Move spool files that no database row refers to into ``orphaned/``; returns their refs.

        ``older_than`` (seconds) spares files of transactions still in flight in another process."""
        keep = set(known)
        cutoff = time.time() - older_than
        moved = []
        for ref in self.refs():
            path = self.path(ref)
            try:
                if ref in keep or path.stat().st_mtime > cutoff:
                    continue
                os.rename(path, self.orphaned / path.name)
            except FileNotFoundError:
                continue
            moved.append(ref)
        for stale in self.tmp.glob("*.tmp"):  # a write that never finished was never answered
            try:
                if stale.stat().st_mtime <= cutoff:
                    stale.unlink()
            except FileNotFoundError:
                pass
        return moved
