"""From raw input to report payloads: what kind of data it is, and its bytes as bounded chunks.

    kind = sniff(head)                       zip | gzip | xml | json | email | None
    chunks = file_chunks(path) / bytes_chunks(data)
    gunzip(chunks, limit)                    multi-member gzip, trailing junk after the last member ignored
    zip_members(data, limits)                (name, chunks) per member, at most ``max_archive_members``
    bounded(chunks, limit, what)             raises ReportError once more than ``limit`` bytes came

Every decompressor is bounded by ``Limits.max_report_bytes`` (zip and gzip bombs stop there, naming the
limit) and every compression error becomes a ReportError saying what was wrong with the data.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from mailwarden.dmarc.limits import DEFAULT_LIMITS, Limits
from mailwarden.errors import ReportError

Kind = Literal["zip", "gzip", "xml", "json", "email"]

ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
_BOMS = (b"\xef\xbb\xbf",)
_UTF16_XML = (b"\xff\xfe<\x00", b"\xfe\xff\x00<")
_EMAIL_FIRST_LINE = re.compile(rb"^(From |[\x21-\x39\x3b-\x7e]+:)")
SNIFF_BYTES = 512


def sniff(head: bytes) -> Kind | None:
    """What the data is, from its first bytes; None when it is none of the report formats."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(_UTF16_XML):
        return "xml"
    for bom in _BOMS:
        head = head.removeprefix(bom)
    text = head.lstrip()
    if text.startswith(b"<"):
        return "xml"
    if text.startswith(b"{"):
        return "json"
    if _EMAIL_FIRST_LINE.match(text):
        return "email"
    return None


def describe(head: bytes) -> str:
    if not head.strip():
        return "empty input"
    return "not a report: expected aggregate XML, SMTP TLS JSON, an email with a report, gzip or zip"


def file_chunks(path: Path, size: int = DEFAULT_LIMITS.chunk_bytes) -> Iterator[bytes]:
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(size):
                yield chunk
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from exc


def bytes_chunks(data: bytes, size: int = DEFAULT_LIMITS.chunk_bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def bounded(chunks: Iterable[bytes], limit: int, what: str) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise ReportError(f"{what} is larger than {limit} bytes (limit {_limit_name(what)})")
        yield chunk


def _limit_name(what: str) -> str:
    return {"the report": "max_report_bytes", "the message": "max_message_bytes",
            "the JSON report": "max_json_bytes"}.get(what, "max_report_bytes")


def read_all(chunks: Iterable[bytes], limit: int, what: str) -> bytes:
    return b"".join(bounded(chunks, limit, what))


def peek(chunks: Iterable[bytes], want: int = SNIFF_BYTES) -> tuple[bytes, Iterator[bytes]]:
    """The first ``want`` bytes (fewer at the end of the data) and an iterator over all of the chunks."""
    iterator = iter(chunks)
    taken: list[bytes] = []
    size = 0
    for chunk in iterator:
        taken.append(chunk)
        size += len(chunk)
        if size >= want:
            break
    head = b"".join(taken)

    def again() -> Iterator[bytes]:
        if head:
            yield head
        yield from iterator

    return head[:want], again()


def gunzip(chunks: Iterable[bytes], limit: int = DEFAULT_LIMITS.max_report_bytes,
           piece: int = DEFAULT_LIMITS.chunk_bytes) -> Iterator[bytes]:
    """Decompress gzip data as it arrives, at most ``limit`` bytes out; members are concatenated and
    bytes after the last member that do not start another one (line ends some mailers add) are ignored."""
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    produced = 0
    finished = False
    try:
        for data in chunks:
            while data:
                if finished:
                    if not data.lstrip(b"\r\n\x00 ").startswith(GZIP_MAGIC):
                        return  # trailing junk after the last member
                    data = data.lstrip(b"\r\n\x00 ")
                    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    finished = False
                out = decompressor.decompress(data, piece)
                produced += len(out)
                if produced > limit:
                    raise ReportError(f"the gzip data expands to more than {limit} bytes (limit max_report_bytes)")
                if out:
                    yield out
                if decompressor.eof:
                    finished = True
                    data = decompressor.unused_data
                else:
                    data = decompressor.unconsumed_tail
        if not finished:  # the input ended inside a member: take what is left, then it must be complete
            out = decompressor.flush()
            produced += len(out)
            if produced > limit:
                raise ReportError(f"the gzip data expands to more than {limit} bytes (limit max_report_bytes)")
            if out:
                yield out
            if not decompressor.eof:
                raise ReportError("truncated gzip data: the stream ends before its end marker")
    except zlib.error as exc:
        raise ReportError(f"invalid gzip data: {exc}") from exc


def zip_members(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Iterator[tuple[str, Iterator[bytes]]]:
    """(member name, bounded decompressed chunks) for each file in the archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ReportError(f"invalid zip archive: {exc}") from exc
    if not infos:
        raise ReportError("the zip archive holds no file")
    if len(infos) > limits.max_archive_members:
        raise ReportError(f"the zip archive holds {len(infos)} files, more than {limits.max_archive_members} "
                          f"(limit max_archive_members)")
    for info in infos:
        yield info.filename, _member_chunks(archive, info, limits)


def _member_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> Iterator[bytes]:
    produced = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(limits.chunk_bytes):
                produced += len(chunk)
                if produced > limits.max_report_bytes:
                    raise ReportError(f"{info.filename[:80]!r} in the zip archive expands to more than "
                                      f"{limits.max_report_bytes} bytes (limit max_report_bytes)")
                yield chunk
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, EOFError, OSError, ValueError) as exc:
        raise ReportError(f"invalid zip archive ({info.filename[:80]!r}): {exc}") from exc
