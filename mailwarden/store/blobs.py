"""Content-addressed, compressed blobs in the data dir: the archive's copy of every accepted message.

    blobs = BlobStore(data_dir / "archive").create()
    digest, created = blobs.put(raw)     # SHA-256 of the raw bytes; the same bytes are stored once
    blobs.get(digest) -> raw; blobs.remove(digest); blobs.digests()

A blob lives at ``ab/cd/<sha256>.gz`` (gzip, fixed header so equal input gives equal files). It is written to a
temporary file, fsynced and renamed into place, so a blob that exists is whole. Deduplication is by name: a
second ``put`` of the same bytes finds the file and writes nothing. Which rows refer to a blob is the
database's business (``mailwarden.gateway.archive``): ``remove`` only deletes the file. A ``put`` of bytes stored
already refreshes the file's time, so a sweep of blobs nobody refers to (``archive.sweep_orphans``, which
spares recent files) cannot take it while its new reference is being committed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import secrets
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from mailwarden.errors import MailwardenError

SUFFIX = ".gz"
LEVEL = 6
MAX_BLOB = 256 * 1024 * 1024  # never inflate more than this (a damaged or planted file)


class BlobError(MailwardenError):
    """Raised when a blob is missing, damaged, or its name is not a SHA-256 digest."""


def digest_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _valid(digest: str) -> bool:
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    """Compressed blobs named by the SHA-256 of their content, under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tmp = directory / "tmp"

    def create(self) -> BlobStore:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self

    def path(self, digest: str) -> Path:
        if not _valid(digest):
            raise BlobError(f"not a SHA-256 digest: {digest[:80]!r}")
        return self.directory / digest[:2] / digest[2:4] / f"{digest}{SUFFIX}"

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def put(self, raw: bytes) -> tuple[str, bool]:
        """Store the bytes durably (fsynced) unless stored already; returns (digest, whether written now)."""
        digest = digest_of(raw)
        final = self.path(digest)
        try:
            os.utime(final)  # there already: fresh again, so no sweep of unreferenced blobs takes it now
            return digest, False
        except FileNotFoundError:
            pass
        data = gzip.compress(raw, compresslevel=LEVEL, mtime=0)
        temporary = self.tmp / f"{digest}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        parent = final.parent
        new_parents = [p for p in (parent.parent, parent) if not p.exists()]
        parent.mkdir(parents=True, exist_ok=True)
        os.rename(temporary, final)  # equal content under an equal name: a racing writer's rename is harmless
        _fsync_dir(parent)
        for directory in new_parents:
            _fsync_dir(directory.parent)
        return digest, True

    def get(self, digest: str) -> bytes:
        path = self.path(digest)
        try:
            with gzip.open(path, "rb") as stream:
                data = stream.read(MAX_BLOB + 1)
        except FileNotFoundError as exc:
            raise BlobError(f"archived message {digest} is missing") from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise BlobError(f"archived message {digest} is damaged: {exc}") from exc
        if len(data) > MAX_BLOB:
            raise BlobError(f"archived message {digest} inflates beyond {MAX_BLOB} bytes")
        return data

    def remove(self, digest: str) -> bool:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()
            return True
        return False

    def digests(self) -> Iterator[str]:
        for path in self.directory.glob(f"??/??/*{SUFFIX}"):
            name = path.name.removesuffix(SUFFIX)
            if _valid(name):
                yield name

    def sweep_tmp(self, older_than: float = 3600.0) -> int:
        """Remove temporary files of writes that never finished (the process died)."""
        cutoff = time.time() - older_than
        removed = 0
        for stale in self.tmp.glob("*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if stale.stat().st_mtime <= cutoff:
                    stale.unlink()
                    removed += 1
        return removed
