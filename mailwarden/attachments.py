"""Attachments: what a file really is, what it contains, whether it hides code.

``inspect_attachment`` never raises and never executes or fetches anything: it sniffs magic bytes,
lists archive members (ZIP, gzip, tar, RAR and 7z headers, nested up to a limit), looks for Office
macros with oletools, notes encryption, HTML tricks and PDF actions, and keeps the text a reader (or a
link scanner) would see. Limits on members, nesting and decompressed bytes are enforced while reading,
never taken from what an archive declares about itself, and every limit hit becomes a defect.

Defects recorded on an attachment:

    archive_too_many_members   more members than ``max_members`` (the rest are not listed)
    archive_bomb               a member expands more than ``max_ratio`` times, or members overlap
    archive_too_large          ``max_decompressed_bytes`` spent; later members are listed, not read
    archive_nested_too_deep    an archive nested deeper than ``max_nesting`` was not opened
    archive_corrupt            a broken directory, header or compressed stream
    archive_unsupported_method a member compressed with a method the standard library cannot read
    macro_unreadable           oletools could not read a VBA project that is there
    inspect_failed             an unexpected error; what was found before it is kept
"""

from __future__ import annotations

import base64
import bz2
import hashlib
import io
import logging
import lzma
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any
from urllib.parse import unquote

from mailwarden.html import parse_html


@dataclass(frozen=True)
class AttachmentLimits:
    max_members: int = 1000
    max_decompressed_bytes: int = 50 * 1024 * 1024
    max_nesting: int = 3
    max_text_chars: int = 200_000
    max_ratio: int = 100  # decompressed / compressed size beyond which a member is a bomb
    max_html_bytes: int = 4 * 1024 * 1024
    max_macro_bytes: int = 20 * 1024 * 1024  # larger Office files are not handed to oletools


@dataclass(frozen=True)
class ArchiveMember:
    name: str
    size: int
    sniffed_type: str = "unknown"
    encrypted: bool = False
    depth: int = 0  # 0 for members of the attachment itself, 1 inside an archive inside it, ...
    parent: str = ""  # path of the nested archive that holds it ("" for the attachment itself)
    has_macros: bool = False

    @property
    def path(self) -> str:
        return f"{self.parent}/{self.name}" if self.parent else self.name


@dataclass(frozen=True)
class Attachment:
    filename: str
    declared_type: str
    sniffed_type: str
    size: int
    sha256: str
    members: tuple[ArchiveMember, ...] = ()
    encrypted: bool = False
    has_macros: bool = False
    macro_indicators: tuple[str, ...] = ()
    html_features: tuple[str, ...] = ()
    text: str = ""
    defects: tuple[str, ...] = field(default_factory=tuple)
    pdf_features: tuple[str, ...] = ()
    shortcut_target: str = ""  # the URL= of an Internet shortcut (.url)

    @property
    def extension(self) -> str:
        name = self.filename.lower().rstrip(". ")
        return name.rsplit(".", 1)[-1].strip() if "." in name else ""


# --- sniffing ------------------------------------------------------------------------------------

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "elf"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"PK\x07\x08", "zip"),
    (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x1f\x8b", "gzip"),
    (b"%PDF", "pdf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"{\\rtf", "rtf"),
    (b"\x89PNG", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF8", "gif"),
    (b"L\x00\x00\x00\x01\x14\x02\x00", "lnk"),
    (b"MSCF", "cab"),
    (b"ITSF", "chm"),
    (b"vhdxfile", "vhd"),
    (b"\xfe\xed\xfa\xce", "macho"),
    (b"\xfe\xed\xfa\xcf", "macho"),
    (b"\xce\xfa\xed\xfe", "macho"),
    (b"\xcf\xfa\xed\xfe", "macho"),
    (b"\xe4\x52\x5c\x7b\x8c\xd8\xa7\x4d\xae\xb1\x53\x78\xd0\x29\x96\xd3", "onenote"),
)
_HTML_START = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<form", b"<meta", b"<iframe")
_SHORTCUT = re.compile(rb"^\s*\[(?:InternetShortcut|DEFAULT)\]", re.IGNORECASE)


def _is_program(payload: bytes | bytearray) -> bool:
    """"MZ" and a DOS header whose e_lfanew points at a PE/NE/LE header (or past the bytes we have), so
    that a text starting with "MZ" is not taken for a program."""
    if not payload.startswith(b"MZ") or len(payload) < 64:
        return False
    offset = int.from_bytes(payload[60:64], "little")
    if offset + 4 <= len(payload):
        return payload[offset : offset + 2] in (b"PE", b"NE", b"LE", b"LX")
    return offset < 0x100000


def sniff(payload: bytes | bytearray) -> str:
    """The file type from its first bytes (not from its name or declared type)."""
    if _is_program(payload):
        return "pe"
    for magic, kind in _MAGIC:
        if payload.startswith(magic):
            return kind
    if len(payload) > 0x8005 and payload[0x8001:0x8006] in (b"CD001", b"BEA01", b"NSR02", b"NSR03"):
        return "iso"
    if len(payload) >= 512 and payload[257:262] == b"ustar":
        return "tar"
    if len(payload) >= 512 and payload[-512:-504] == b"conectix":
        return "vhd"
    if b"%PDF-" in payload[:1024]:  # readers accept junk before the header, and so do phishers
        return "pdf"
    head = bytes(payload[:1024]).removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith(_HTML_START) or b"<html" in head or b"<!doctype html" in head:
        return "html"
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "svg"
    if _SHORTCUT.match(head):
        return "url_shortcut"
    return "unknown"


# --- one inspection's running state --------------------------------------------------------------

_CHUNK = 256 * 1024  # decompressed bytes read at a time
_INPUT = 64 * 1024  # compressed bytes fed at a time
_HEAD = 0x8800  # bytes kept from the start of each member for sniffing (an ISO needs 0x8006)
_BOMB_FLOOR = 1024 * 1024  # members smaller than this are never called bombs
_ARCHIVES = frozenset({"zip", "gzip", "tar", "rar", "7z"})
_KEEP = _ARCHIVES | {"ole"}  # members read whole to look inside them


class _Corrupt(Exception):
    """Raised inside the archive readers when a structure cannot be read; becomes a defect."""


@dataclass
class _Scan:
    limits: AttachmentLimits
    filename: str = ""
    members: list[ArchiveMember] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    listed: int = 0  # directory entries looked at, all archives together
    decompressed: int = 0
    stopped: bool = False  # decompression budget spent or a bomb found: list, do not read
    encrypted: bool = False
    vba_project: bytes = b""  # word/vbaProject.bin (or xl/, ppt/) of an OOXML attachment
    xlm_macros: bool = False
    read_prefix: bool = False  # a zip found in front of another has been read (only once)

    def defect(self, kind: str) -> None:
        if kind not in self.defects:
            self.defects.append(kind)

    def room(self) -> int:
        return self.limits.max_members - self.listed


def _zlib_chunks(decompressor: Any, data: bytes | bytearray | memoryview) -> Iterator[bytes]:
    """Output of a zlib decompressor in chunks of at most _CHUNK bytes, whatever the input claims."""
    view = memoryview(data)
    pos = 0
    while not decompressor.eof:
        if decompressor.unconsumed_tail:
            chunk = decompressor.unconsumed_tail
        elif pos < len(view):
            chunk = view[pos : pos + _INPUT]
            pos += _INPUT
        else:
            chunk = b""
        out = decompressor.decompress(chunk, _CHUNK)
        if out:
            yield out
        elif not chunk:
            break
    if not decompressor.eof:
        raise _Corrupt("truncated stream")


def _bz2_chunks(data: bytes | bytearray | memoryview) -> Iterator[bytes]:
    decompressor = bz2.BZ2Decompressor()
    view = memoryview(data)
    pos = 0
    while not decompressor.eof:
        if decompressor.needs_input:
            if pos >= len(view):
                raise _Corrupt("truncated stream")
            chunk = view[pos : pos + _INPUT]
            pos += _INPUT
        else:
            chunk = memoryview(b"")
        out = decompressor.decompress(chunk, _CHUNK)
        if out:
            yield out


def _stored_chunks(data: bytes | bytearray | memoryview) -> Iterator[bytes]:
    view = memoryview(data)
    for pos in range(0, len(view), _CHUNK):
        yield bytes(view[pos : pos + _CHUNK])


@dataclass
class _Read:
    head: bytes
    size: int
    content: bytearray | None  # the whole member, when it was wanted and fully read
    complete: bool
    crc: int = 0


def _read_stream(chunks: Iterator[bytes], packed_size: int, scan: _Scan, keep: bool | None = None) -> _Read:
    """Count what a member really expands to, keeping its head (and all of it when ``keep``, or when
    ``keep`` is None and the head shows a container worth opening). Stops at the bomb ratio and the
    decompression budget."""
    limits = scan.limits
    head = bytearray()
    kept: bytearray | None = bytearray() if keep is not False else None
    decided = keep is not None
    size = crc = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)
            scan.decompressed += len(chunk)
            if len(head) < _HEAD:
                head += chunk[: _HEAD - len(head)]
            if kept is not None:
                kept += chunk
            if not decided and len(head) >= 512:
                decided = True
                if sniff(head) not in _KEEP:
                    kept = None
            if size > _BOMB_FLOOR and size > limits.max_ratio * max(packed_size, 1):
                scan.defect("archive_bomb")
                scan.stopped = True
                return _Read(bytes(head), size, None, False)
            if scan.decompressed > limits.max_decompressed_bytes:
                scan.defect("archive_too_large")
                scan.stopped = True
                return _Read(bytes(head), size, None, False)
    except (_Corrupt, zlib.error, OSError, EOFError, ValueError):
        scan.defect("archive_corrupt")  # what was read before the damage still counts (and sniffs)
        return _Read(bytes(head), size, None, False)
    if not decided and sniff(head) not in _KEEP:
        kept = None
    return _Read(bytes(head), size, kept, True, crc)


def _add_member(scan: _Scan, name: str, size: int, read: _Read | None, level: int, parent: str,
                encrypted: bool = False) -> None:
    """Record one member; open it when it is itself an archive (or look into it when it is OLE)."""
    kind = sniff(read.head) if read is not None and read.head else "unknown"
    index = len(scan.members)
    member = ArchiveMember(name, size, kind, encrypted, depth=level - 1, parent=parent)
    scan.members.append(member)
    if read is None or read.content is None:
        return
    if kind in _ARCHIVES:
        if level >= scan.limits.max_nesting:
            scan.defect("archive_nested_too_deep")
            return
        refined, macros = _read_archive(kind, read.content, level + 1, member.path, scan)
        scan.members[index] = replace(member, sniffed_type=refined, has_macros=macros)
    elif kind == "ole":
        ole_encrypted = _OLE_ENCRYPTION_INFO in read.content
        scan.encrypted = scan.encrypted or ole_encrypted
        scan.members[index] = replace(member, has_macros=_OLE_VBA in read.content,
                                      encrypted=encrypted or ole_encrypted)


def _read_archive(kind: str, data: bytes | bytearray, level: int, parent: str, scan: _Scan) -> tuple[str, bool]:
    """List an archive's members into ``scan``; returns the refined type (``ooxml`` for a .docx, ``jar``
    ...) and whether it is an Office document with macros."""
    try:
        if kind == "zip":
            return _read_zip(data, level, parent, scan)
        if kind == "gzip":
            _read_gzip(data, level, parent, scan)
        elif kind == "tar":
            _read_tar(data, level, parent, scan)
        elif kind == "rar":
            _read_rar(data, level, parent, scan)
        elif kind == "7z":
            _read_7z(data, level, parent, scan)
    except (_Corrupt, struct.error, IndexError, ValueError, EOFError, OSError, zlib.error, lzma.LZMAError):
        scan.defect("archive_corrupt")
    return kind, False


# --- ZIP -----------------------------------------------------------------------------------------
# The central directory is read here rather than with zipfile, which builds an object for every entry
# before anything can be bounded; members are decompressed in chunks with zlib/bz2.

_EOCD = struct.Struct("<4sHHHHIIH")
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")


@dataclass(frozen=True)
class _ZipEntry:
    name: str
    flags: int
    method: int
    crc: int
    packed: int
    size: int
    offset: int  # of the local header, in the data as given
    raw_name: bytes = b""


def _zip64_sizes(extra: bytes | bytearray, size: int, packed: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, pos)
        if kind == 1:
            values = extra[pos + 4 : pos + 4 + length]
            cursor = 0
            fields = [size, packed, offset]
            for i, value in enumerate(fields):
                if value == 0xFFFFFFFF and cursor + 8 <= len(values):
                    fields[i] = struct.unpack_from("<Q", values, cursor)[0]
                    cursor += 8
            return fields[0], fields[1], fields[2]
        pos += 4 + length
    return size, packed, offset


def _zip_directory(data: bytes | bytearray, scan: _Scan) -> tuple[list[_ZipEntry], int]:
    """Entries of the central directory (within the member limit) and where the zip starts in data."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(data):
        raise _Corrupt("no end of central directory")
    _, _, _, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(data, end)
    cd_end = end
    if count == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset):
        record = end - 20 - _EOCD64.size
        if record >= 0 and data[end - 20 : end - 16] == b"PK\x06\x07" and data[record : record + 4] == b"PK\x06\x06":
            count, cd_size, cd_offset = _EOCD64.unpack_from(data, record)[7:10]
            cd_end = record
    cd_start = cd_end - cd_size
    base = cd_start - cd_offset  # bytes in front of the zip (self-extractor stubs, junk, another zip)
    if cd_start < 0 or base < 0:
        raise _Corrupt("central directory outside the data")
    if count > scan.room():
        scan.defect("archive_too_many_members")
    entries: list[_ZipEntry] = []
    pos = cd_start
    for _ in range(max(0, min(count, scan.room()))):
        if pos + _CENTRAL.size > cd_end or data[pos : pos + 4] != b"PK\x01\x02":
            scan.defect("archive_corrupt")
            break
        fields = _CENTRAL.unpack_from(data, pos)
        flags, method, crc, packed, size = fields[3], fields[4], fields[7], fields[8], fields[9]
        name_len, extra_len, comment_len, offset = fields[10], fields[11], fields[12], fields[16]
        raw_name = data[pos + 46 : pos + 46 + name_len]
        if 0xFFFFFFFF in (packed, size, offset):
            extra = data[pos + 46 + name_len : pos + 46 + name_len + extra_len]
            size, packed, offset = _zip64_sizes(extra, size, packed, offset)
        name = bytes(raw_name).decode("utf-8" if flags & 0x800 else "cp437", "replace")
        entries.append(_ZipEntry(name, flags, method, crc, packed, size, base + offset, bytes(raw_name)))
        scan.listed += 1
        pos += 46 + name_len + extra_len + comment_len
    return entries, base


def _local_header(data: bytes | bytearray, entry: _ZipEntry) -> int:
    """Where the member's local header is: where the directory says, or else (a directory with wrong
    offsets, which archivers tolerate and phishers use) the first local header with the same name."""
    pos = entry.offset
    if pos >= 0 and pos + _LOCAL.size <= len(data) and data[pos : pos + 4] == b"PK\x03\x04":
        return pos
    pos = data.find(b"PK\x03\x04")
    for _ in range(1000):
        if pos < 0:
            break
        if data[pos + 30 : pos + 30 + len(entry.raw_name)] == entry.raw_name \
                and _LOCAL.unpack_from(data, pos)[9] == len(entry.raw_name):
            return pos
        pos = data.find(b"PK\x03\x04", pos + 4)
    raise _Corrupt("bad local header")


def _zip_data(data: bytes | bytearray, entry: _ZipEntry) -> tuple[int, int]:
    """Start and end of a member's compressed bytes, from its local header."""
    pos = _local_header(data, entry)
    name_len, extra_len = _LOCAL.unpack_from(data, pos)[9:11]
    start = pos + _LOCAL.size + name_len + extra_len
    return start, start + entry.packed


def _overlapping(data: bytes | bytearray, entries: list[_ZipEntry]) -> set[int]:
    """Indexes of entries whose data overlaps another's (the non-recursive zip bomb)."""
    spans = []
    for i, entry in enumerate(entries):
        try:
            header = _local_header(data, entry)
            _, end = _zip_data(data, entry)
        except _Corrupt:
            continue
        spans.append((header, max(end, header + 1), i))
    spans.sort()
    bad: set[int] = set()
    reach = -1
    for offset, end, i in spans:
        if offset < reach:
            bad.add(i)
        reach = max(reach, end)
    return bad


def _zip_chunks(view: memoryview, method: int) -> Iterator[bytes]:
    if method == 0:
        return _stored_chunks(view)
    if method == 8:
        return _zlib_chunks(zlib.decompressobj(-zlib.MAX_WBITS), view)
    if method == 12:
        return _bz2_chunks(view)
    raise NotImplementedError(method)


def _container_kind(names: set[str]) -> str:
    if "[Content_Types].xml" in names:
        return "ooxml"
    if "mimetype" in names and any(n.lower() == "content.xml" for n in names):
        return "odf"
    if "AndroidManifest.xml" in names and "classes.dex" in names:
        return "apk"
    if "AppxManifest.xml" in names or "AppxMetadata/AppxBundleManifest.xml" in names:
        return "msix"
    if "META-INF/MANIFEST.MF" in names and any(n.endswith(".class") for n in names):
        return "jar"
    return "zip"


def _read_zip(data: bytes | bytearray, level: int, parent: str, scan: _Scan) -> tuple[str, bool]:
    entries, base = _zip_directory(data, scan)
    if base > 0 and not scan.read_prefix and data.rfind(b"PK\x05\x06", 0, base) >= 0:
        # another zip in front of this one: some tools open the first, some the last; read both
        scan.read_prefix = True
        _read_archive("zip", data[:base], level, parent, scan)
    kind = _container_kind({e.name for e in entries})
    if kind in ("ooxml", "odf"):
        return kind, _office_macros(data, entries, level, scan)
    bad = _overlapping(data, entries)
    if bad:
        scan.defect("archive_bomb")
    view = memoryview(data)
    for i, entry in enumerate(entries):
        if entry.name.endswith("/"):
            continue
        encrypted = bool(entry.flags & 0x1) or entry.method == 99
        scan.encrypted = scan.encrypted or encrypted
        if entry.size > _BOMB_FLOOR and entry.size > scan.limits.max_ratio * max(entry.packed, 1):
            scan.defect("archive_bomb")
            scan.stopped = True
        read = None
        if not (encrypted or scan.stopped or i in bad):
            read = _read_zip_member(data, view, entry, scan)
        _add_member(scan, entry.name, read.size if read else entry.size, read, level, parent, encrypted)
    return kind, False


def _read_zip_member(data: bytes | bytearray, view: memoryview, entry: _ZipEntry, scan: _Scan,
                     keep: bool | None = None) -> _Read | None:
    try:
        start, end = _zip_data(data, entry)
        if entry.method != 0:  # compressed streams end by themselves; the declared size may lie
            end = len(data)
        read = _read_stream(_zip_chunks(view[start:end], entry.method), entry.packed, scan, keep)
    except NotImplementedError:
        scan.defect("archive_unsupported_method")
        return None
    except (_Corrupt, zlib.error, OSError, EOFError, ValueError, struct.error):
        scan.defect("archive_corrupt")
        return None
    if read.complete and read.crc != entry.crc:
        scan.defect("archive_corrupt")
    return read


_MACRO_PART = re.compile(r"(?:^|/)vbaProject\.bin$|^xl/macrosheets/|^(?:word|xl|ppt)/vbaData\.xml$", re.IGNORECASE)


def _office_macros(data: bytes | bytearray, entries: list[_ZipEntry], level: int, scan: _Scan) -> bool:
    """An OOXML/ODF package: macros are a part of their own (vbaProject.bin, an XLM macro sheet, an
    ODF Basic library). The attachment's own VBA project is kept for oletools."""
    found = False
    for entry in entries:
        if entry.name.lower().startswith("basic/") and entry.name.lower().endswith(".xml") \
                and "script-" not in entry.name.lower():
            found = True
        if not _MACRO_PART.search(entry.name):
            continue
        found = True
        if entry.name.lower().startswith("xl/macrosheets/"):
            scan.xlm_macros = True
        elif level == 1 and entry.name.lower().endswith("vbaproject.bin") and not scan.vba_project \
                and entry.size <= scan.limits.max_macro_bytes:
            read = _read_zip_member(data, memoryview(data), entry, scan, keep=True)
            if read is not None and read.content is not None:
                scan.vba_project = bytes(read.content)
    return found


# --- gzip and tar --------------------------------------------------------------------------------

def _gzip_name(data: bytes | bytearray) -> str:
    if len(data) < 10 or not data[3] & 0x08:
        return ""
    pos = 10
    if data[3] & 0x04:
        pos += 2 + int.from_bytes(data[10:12], "little")
    end = data.find(b"\x00", pos, pos + 1024)
    return bytes(data[pos:end]).decode("latin-1") if end > pos else ""


def _gunzipped_name(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith(".tgz"):
        return name[:-4] + ".tar"
    return name[:-3] if lowered.endswith(".gz") else name or "content"


def _read_gzip(data: bytes | bytearray, level: int, parent: str, scan: _Scan) -> None:
    if scan.room() <= 0:
        scan.defect("archive_too_many_members")
        return
    scan.listed += 1
    name = _gzip_name(data) or _gunzipped_name(parent.rsplit("/", 1)[-1] if parent else scan.filename)
    read = None
    if not scan.stopped:
        read = _read_stream(_zlib_chunks(zlib.decompressobj(16 + zlib.MAX_WBITS), data), len(data), scan)
    _add_member(scan, name, read.size if read else 0, read, level, parent)


def _read_tar(data: bytes | bytearray, level: int, parent: str, scan: _Scan) -> None:
    pos = 0
    long_name = b""
    while pos + 512 <= len(data):
        block = bytes(data[pos : pos + 512])
        if not block.strip(b"\x00"):
            break
        try:
            size = int(block[124:136].split(b"\x00", 1)[0].strip() or b"0", 8)
        except ValueError as exc:
            raise _Corrupt("bad tar size") from exc
        start = pos + 512
        pos = start + (size + 511) // 512 * 512
        kind = block[156:157]
        if kind in (b"L", b"x"):
            body = bytes(data[start : start + min(size, 4096)])
            if kind == b"L":
                long_name = body.split(b"\x00", 1)[0]
            else:
                match = re.search(rb"\d+ path=([^\n]*)\n", body)
                long_name = match.group(1) if match else long_name
            continue
        if kind not in (b"0", b"\x00", b"7"):
            long_name = b""
            continue
        if scan.room() <= 0:
            scan.defect("archive_too_many_members")
            return
        scan.listed += 1
        raw = long_name or block[0:100].split(b"\x00", 1)[0]
        if not long_name and block[257:262] == b"ustar" and block[345] != 0:
            raw = block[345:500].split(b"\x00", 1)[0] + b"/" + raw
        long_name = b""
        content = data[start : start + size]
        wanted = sniff(content[:512]) in _KEEP
        read = _Read(bytes(content[:_HEAD]), size, bytearray(content) if wanted else None, True)
        _add_member(scan, raw.decode("utf-8", "replace"), size, read, level, parent)


# --- RAR and 7z: headers only (the data needs their own decompressors) ----------------------------

def _vint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(10):
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos + i + 1
    raise _Corrupt("bad vint")


def _read_rar(data: bytes | bytearray, level: int, parent: str, scan: _Scan) -> None:
    if data.startswith(b"Rar!\x1a\x07\x01\x00"):
        _read_rar5(data, level, parent, scan)
    else:
        _read_rar4(data, level, parent, scan)


def _rar_member(scan: _Scan, name: str, size: int, stored_head: bytes | None, level: int, parent: str,
                encrypted: bool) -> bool:
    if scan.room() <= 0:
        scan.defect("archive_too_many_members")
        return False
    scan.listed += 1
    scan.encrypted = scan.encrypted or encrypted
    read = _Read(stored_head, size, None, True) if stored_head and not encrypted else None
    _add_member(scan, name, size, read, level, parent, encrypted)
    return True


def _read_rar5(data: bytes | bytearray, level: int, parent: str, scan: _Scan) -> None:
    pos = 8
    while pos + 7 <= len(data):
        size, body = _vint(data, pos + 4)
        end = body + size
        kind, cursor = _vint(data, body)
        flags, cursor = _vint(data, cursor)
        extra_size = data_size = 0
        if flags & 0x1:
            extra_size, cursor = _vint(data, cursor)
        if flags & 0x2:
            data_size, cursor = _vint(data, cursor)
        if kind == 4:  # archive encryption header: every later header is encrypted
            scan.encrypted = True
            return
        if kind == 5:
            return
        if kind == 2:
            file_flags, cursor = _vint(data, cursor)
            unpacked, cursor = _vint(data, cursor)
            _, cursor = _vint(data, cursor)  # attributes
            cursor += (4 if file_flags & 0x2 else 0) + (4 if file_flags & 0x4 else 0)
            compression, cursor = _vint(data, cursor)
            _, cursor = _vint(data, cursor)  # host OS
            name_len, cursor = _vint(data, cursor)
            name = bytes(data[cursor : cursor + name_len]).decode("utf-8", "replace")
            encrypted = _rar5_encrypted(data, end - extra_size, end)
            stored = (compression >> 7) & 0x7 == 0
            head = bytes(data[end : end + min(data_size, _HEAD)]) if stored else None
            if not file_flags & 0x1 and not _rar_member(scan, name, unpacked, head, level, parent, encrypted):
                return
        if end <= pos:
            raise _Corrupt("rar header loop")
        pos = end + data_size


def _rar5_encrypted(data: bytes | bytearray, start: int, end: int) -> bool:
    pos = start
    while pos < end:
        size, cursor = _vint(data, pos)
        kind, _ = _vint(data, cursor)
        if kind == 1:
            return True
        if size == 0:
            break
        pos = cursor + size
    return False


def _read_rar4(data: bytes | bytearray, level: int, parent: str, scan: _Scan) -> None:
    pos = 7
    while pos + 7 <= len(data):
        _, kind, flags, size = struct.unpack_from("<HBHH", data, pos)
        if size < 7:
            raise _Corrupt("bad rar header")
        added = 0
        if kind == 0x73 and flags & 0x0080:  # main header: block headers are encrypted
            scan.encrypted = True
            return
        if kind == 0x7B:
            return
        if kind == 0x74:
            packed, unpacked, _, _, _, _, method, name_len, _ = struct.unpack_from("<IIBIIBBHI", data, pos + 7)
            cursor = pos + 32
            if flags & 0x100:
                high_packed, high_unpacked = struct.unpack_from("<II", data, cursor)
                packed += high_packed << 32
                unpacked += high_unpacked << 32
                cursor += 8
            raw = bytes(data[cursor : cursor + name_len])
            name = raw.split(b"\x00", 1)[0].decode("utf-8" if flags & 0x200 else "latin-1", "replace")
            added = packed
            encrypted = bool(flags & 0x04)
            head = bytes(data[pos + size : pos + size + min(packed, _HEAD)]) if method == 0x30 else None
            directory = flags & 0xE0 == 0xE0
            if not directory and not _rar_member(scan, name, unpacked, head, level, parent, encrypted):
                return
        elif flags & 0x8000:
            added = struct.unpack_from("<I", data, pos + 7)[0]
        pos += size + added


_7Z_AES = b"\x06\xf1\x07\x01"
_7Z_LZMA = b"\x03\x01\x01"


class _Bytes:
    """A cursor over a 7z header."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise _Corrupt("7z header ends early")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise _Corrupt("7z header ends early")
        self.pos += count
        return self.data[self.pos - count : self.pos]

    def number(self) -> int:
        first = self.byte()
        mask = 0x80
        value = 0
        for i in range(8):
            if not first & mask:
                return value | ((first & (mask - 1)) << (8 * i))
            value |= self.byte() << (8 * i)
            mask >>= 1
        return value


@dataclass
class _Streams:
    pack_position: int = 0
    pack_sizes: list[int] = field(default_factory=list)
    coders: list[list[tuple[bytes, bytes]]] = field(default_factory=list)  # per folder: (id, properties)
    unpack_sizes: list[list[int]] = field(default_factory=list)


def _7z_digests(cursor: _Bytes, count: int) -> list[bool]:
    if cursor.byte():
        defined = [True] * count
    else:
        bits = cursor.take((count + 7) // 8)
        defined = [bool(bits[i // 8] & (0x80 >> (i % 8))) for i in range(count)]
    cursor.take(4 * sum(defined))
    return defined


def _7z_streams(cursor: _Bytes) -> _Streams:
    streams = _Streams()
    folder_crcs: list[bool] = []
    while (kind := cursor.byte()) != 0x00:
        if kind == 0x06:  # pack info
            streams.pack_position = cursor.number()
            count = cursor.number()
            while (sub := cursor.byte()) != 0x00:
                if sub == 0x09:
                    streams.pack_sizes = [cursor.number() for _ in range(count)]
                elif sub == 0x0A:
                    _7z_digests(cursor, count)
                else:
                    raise _Corrupt("7z pack info")
        elif kind == 0x07:  # coders (unpack info)
            if cursor.byte() != 0x0B:
                raise _Corrupt("7z folder")
            folders = cursor.number()
            if cursor.byte() != 0:
                raise _Corrupt("7z external folders")
            outputs = []
            for _ in range(min(folders, 10_000)):
                coders: list[tuple[bytes, bytes]] = []
                total_in = total_out = 0
                for _ in range(cursor.number()):
                    flag = cursor.byte()
                    coder_id = cursor.take(flag & 0x0F)
                    ins, outs = (cursor.number(), cursor.number()) if flag & 0x10 else (1, 1)
                    properties = cursor.take(cursor.number()) if flag & 0x20 else b""
                    coders.append((coder_id, properties))
                    total_in += ins
                    total_out += outs
                for _ in range(2 * (total_out - 1)):
                    cursor.number()
                packed = total_in - (total_out - 1)
                if packed > 1:
                    for _ in range(packed):
                        cursor.number()
                streams.coders.append(coders)
                outputs.append(total_out)
            if cursor.byte() != 0x0C:
                raise _Corrupt("7z unpack sizes")
            streams.unpack_sizes = [[cursor.number() for _ in range(n)] for n in outputs]
            while (sub := cursor.byte()) != 0x00:
                if sub != 0x0A:
                    raise _Corrupt("7z coders info")
                folder_crcs = _7z_digests(cursor, len(outputs))
        elif kind == 0x08:  # substreams
            per_folder = [1] * len(streams.coders)
            sub = cursor.byte()
            if sub == 0x0D:
                per_folder = [cursor.number() for _ in streams.coders]
                sub = cursor.byte()
            if sub == 0x09:
                for n in per_folder:
                    for _ in range(max(0, n - 1)):
                        cursor.number()
                sub = cursor.byte()
            while sub != 0x00:
                if sub != 0x0A:
                    raise _Corrupt("7z substreams")
                known = [n == 1 and i < len(folder_crcs) and folder_crcs[i] for i, n in enumerate(per_folder)]
                _7z_digests(cursor, sum(n for n, k in zip(per_folder, known, strict=True) if not k))
                sub = cursor.byte()
        else:
            raise _Corrupt("7z streams info")
    return streams


def _7z_names(cursor: _Bytes) -> list[str]:
    """File names from a plain 7z header (after its 0x01 byte)."""
    while (kind := cursor.byte()) != 0x00:
        if kind == 0x02:  # archive properties
            while cursor.byte() != 0x00:
                cursor.take(cursor.number())
        elif kind in (0x03, 0x04):  # additional / main streams info
            _7z_streams(cursor)
        elif kind == 0x05:
            count = cursor.number()
            while (prop := cursor.byte()) != 0x00:
                value = cursor.take(cursor.number())
                if prop == 0x11 and value[:1] == b"\x00":
                    return value[1:].decode("utf-16-le", "replace").split("\x00")[:count]
            return []
        else:
            raise _Corrupt("7z header")
    return []


def _7z_decode_header(data: bytes | bytearray, cursor: _Bytes, scan: _Scan) -> bytes | None:
    """The LZMA-packed header of a 7z archive (its usual form), bounded; None when it cannot be read."""
    streams = _7z_streams(cursor)
    if not streams.coders or not streams.pack_sizes or not streams.unpack_sizes:
        raise _Corrupt("7z encoded header")
    coders = streams.coders[0]
    if any(coder_id == _7Z_AES for coder_id, _ in coders):
        return None
    if len(coders) != 1 or coders[0][0] != _7Z_LZMA or len(coders[0][1]) != 5:
        return None
    properties = coders[0][1]
    lc_lp_pb = properties[0]
    decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[{
        "id": lzma.FILTER_LZMA1, "dict_size": int.from_bytes(properties[1:5], "little"),
        "lc": lc_lp_pb % 9, "lp": (lc_lp_pb // 9) % 5, "pb": lc_lp_pb // 45}])
    start = 32 + streams.pack_position
    packed = data[start : start + streams.pack_sizes[0]]
    wanted = min(streams.unpack_sizes[0][0], 4 * 1024 * 1024)
    header = decoder.decompress(bytes(packed), max_length=wanted)
    scan.decompressed += len(header)
    return header


def _read_7z(data: bytes | bytearray, level: int, parent: str, scan: _Scan) -> None:
    if len(data) < 32:
        raise _Corrupt("short 7z")
    next_offset, next_size = struct.unpack_from("<QQ", data, 12)
    start = 32 + next_offset
    header = bytes(data[start : start + min(next_size, 4 * 1024 * 1024)])
    if not header:
        raise _Corrupt("7z header outside the data")
    if _7Z_AES in header:
        scan.encrypted = True
    if header[0] == 0x17:  # encoded (packed, maybe encrypted) header
        decoded = _7z_decode_header(data, _Bytes(header[1:]), scan)
        if decoded is None:
            scan.encrypted = True if _7Z_AES in header else scan.encrypted
            return
        header = decoded
        scan.encrypted = scan.encrypted or _7Z_AES in header
    if header[:1] != b"\x01":
        return
    for name in _7z_names(_Bytes(header[1:])):
        if scan.room() <= 0:
            scan.defect("archive_too_many_members")
            return
        scan.listed += 1
        _add_member(scan, name, 0, None, level, parent, scan.encrypted)


# --- Office (OLE) --------------------------------------------------------------------------------

_OLE_VBA = "_VBA_PROJECT".encode("utf-16-le")
_OLE_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")
_OLE_WORKBOOK = ("Workbook".encode("utf-16-le"), "Book\x00".encode("utf-16-le"))
# a BOUNDSHEET record of an Excel 4.0 macro sheet: id 0x85, length, position, visibility, type 1
_XLM_SHEET = re.compile(rb"\x85\x00[\x08-\xff]\x00.{4}[\x00-\x02]\x01", re.DOTALL)
_LEGACY_OFFICE = ("doc", "dot", "xls", "xlt", "ppt", "pot", "pps")

_oletools_quiet = False


def _olevba() -> Any:
    """oletools' VBA parser, imported on first use (it is slow to import and warns about pyparsing)."""
    global _oletools_quiet
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from oletools import olevba
    if not _oletools_quiet:
        for name in ("olevba", "olefile", "oletools", "msoffcrypto"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        _oletools_quiet = True
    return olevba


def _analyze_vba(filename: str, data: bytes, scan: _Scan) -> tuple[bool, tuple[str, ...]]:
    """Run oletools on an OLE file or a vbaProject.bin: (macros present, AutoExec/Suspicious keywords)."""
    try:
        olevba = _olevba()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            parser = olevba.VBA_Parser(filename or "attachment", data=data, disable_pcode=True)
            try:
                if not parser.detect_macros():
                    return False, ()
                results = parser.analyze_macros() or []
            finally:
                parser.close()
    except Exception:  # oletools raises many kinds on hostile input; the file still has a VBA project
        scan.defect("macro_unreadable")
        return True, ()
    indicators: list[str] = []
    for kind, keyword, _ in results:
        label = f"{kind}:{keyword}"
        if kind in ("AutoExec", "Suspicious") and label not in indicators:
            indicators.append(label)
    return True, tuple(indicators[:30])


def _legacy_encrypted(payload: bytes) -> bool:
    try:
        _olevba()  # quiets the loggers msoffcrypto shares with oletools
        import msoffcrypto

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return bool(msoffcrypto.OfficeFile(io.BytesIO(payload)).is_encrypted())
    except Exception:  # not an Office file msoffcrypto knows: nothing to say
        return False


def _inspect_ole(filename: str, extension: str, payload: bytes, scan: _Scan) -> tuple[bool, tuple[str, ...]]:
    if _OLE_ENCRYPTION_INFO in payload:  # an encrypted OOXML document inside its OLE wrapper
        scan.encrypted = True
    elif extension in _LEGACY_OFFICE and len(payload) <= scan.limits.max_macro_bytes:
        scan.encrypted = _legacy_encrypted(payload)
    has_vba = _OLE_VBA in payload
    xlm = any(name in payload for name in _OLE_WORKBOOK) and _XLM_SHEET.search(payload) is not None
    if not (has_vba or xlm):
        return False, ()
    if len(payload) > scan.limits.max_macro_bytes:
        return True, ()
    return _analyze_vba(filename, payload, scan)


# --- HTML, PDF, text -----------------------------------------------------------------------------

_JS_REDIRECT = re.compile(
    r"\b(?:window\.|document\.|top\.|self\.|parent\.)?location(?:\.href)?\s*=(?!=)"
    r"|\blocation\.(?:replace|assign)\s*\(|\bwindow\.navigate\s*\(", re.IGNORECASE)
_REFRESH_URL = re.compile(r"url\s*=", re.IGNORECASE)
_BLOB_API = re.compile(r"\b(?:msSaveOrOpenBlob|msSaveBlob|createObjectURL)\b|\bnew\s+Blob\s*\(")
_DECODER = re.compile(r"\batob\s*\(|base64", re.IGNORECASE)
_DATA_DOWNLOAD = re.compile(r"data:application/[\w.+-]*;base64,[A-Za-z0-9+/]{500}", re.IGNORECASE)
_OBFUSCATOR = re.compile(r"\b(?:eval|unescape|String\.fromCharCode|document\.write(?:ln)?|atob|Function)\s*\(")
# runs that are only encoded data; the look-behinds make each run be tried once (linear time)
_ENCODED_RUN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{600}|(?<![\d,\s])(?:\d{2,3}\s*,\s*){80}")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}|\\x[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}")
# markup or script hidden in an encoded string literal: unescape("%3Cform...") / atob("PGZvcm0...")
_PERCENT_CALL = re.compile(r"""\b(?:unescape|decodeURIComponent|decodeURI)\s*\(\s*(?:"([^"]{60,})"|'([^']{60,})')""")
_BASE64_CALL = re.compile(r"""\batob\s*\(\s*(?:"([A-Za-z0-9+/=\s]{60,})"|'([A-Za-z0-9+/=\s]{60,})')""")
_PERCENT_U = re.compile(r"%u([0-9A-Fa-f]{4})")
_CODE = re.compile(r"<[a-zA-Z!/]|\blocation\b|\beval\s*\(|\bfunction\b|\bdocument\.", re.IGNORECASE)
_PASSWORD_IN_SCRIPT = re.compile(r"""type\s*=\s*\\?["']?password""", re.IGNORECASE)
_SCRIPT_URL = re.compile(r"""https?://[^\s"'<>()\\`]{4,2000}""", re.IGNORECASE)
_TEXT_TYPES = ("text/plain", "text/calendar", "text/csv", "text/x-vcard", "text/vcard", "text/directory")
_TEXT_EXTENSIONS = frozenset({"txt", "csv", "ics", "vcf", "vcs", "log"})


def _decode(payload: bytes) -> str:
    if payload.startswith((b"\xff\xfe", b"\xfe\xff")):
        return payload.decode("utf-16", "replace")
    try:
        return payload.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", "replace")


_HIDDEN_LITERAL = 256 * 1024  # of one encoded literal; a hidden login page is far smaller
_HIDDEN_TOTAL = 1024 * 1024  # decoded text read again as markup, per attachment


def _hidden_strings(markup: str, budget: int) -> list[str]:
    """Encoded string literals handed to unescape()/atob(), decoded (never run), up to ``budget`` chars."""
    calls = [*islice(_PERCENT_CALL.finditer(markup), 20), *islice(_BASE64_CALL.finditer(markup), 20)]
    found: list[str] = []
    for match in calls:
        if budget <= 0:
            break
        literal = (match.group(1) or match.group(2))[: min(_HIDDEN_LITERAL, 4 * budget)]
        if match.re is _PERCENT_CALL:
            text = unquote(_PERCENT_U.sub(lambda m: chr(int(m.group(1), 16)), literal))
        else:
            literal = re.sub(r"\s+", "", literal)
            try:
                text = _decode(base64.b64decode(literal + "=" * (-len(literal) % 4)))
            except ValueError:
                continue
        found.append(text[:budget])
        budget -= len(found[-1])
    return found


def _read_markup(markup: str, hidden: list[str], features: list[str], texts: list[str]) -> None:
    """Add the tricks of one piece of markup to ``features`` and what it shows and links to ``texts``."""
    document = parse_html(markup, max_links=200)
    scripts = "\n".join(document.scripts)
    found: list[str] = []
    if document.has_password_input or _PASSWORD_IN_SCRIPT.search(scripts):
        found.append("password_form")
    forms = [link.href.strip() for link in document.links if link.kind == "form"]
    if any(href.lower().startswith(("http://", "https://", "//")) for href in forms):
        found.append("form_post_external")
    if _JS_REDIRECT.search(markup) or _REFRESH_URL.search(document.meta_refresh):
        found.append("js_redirect")
    if (_BLOB_API.search(markup) and (_DECODER.search(markup) or _ENCODED_RUN.search(scripts))) \
            or _DATA_DOWNLOAD.search(markup):
        found.append("html_smuggling")
    if any(_CODE.search(text) for text in hidden) or (_OBFUSCATOR.search(scripts) and (
            _ENCODED_RUN.search(scripts) or sum(1 for _ in islice(_ESCAPE.finditer(scripts), 200)) >= 200)):
        found.append("obfuscated_script")
    features.extend(f for f in found if f not in features)
    texts.append(document.text)
    texts.extend(link.href for link in document.links if link.href)
    if document.meta_refresh:
        texts.append(document.meta_refresh.split("=", 1)[-1].strip(" '\""))
    texts.extend(m.group(0) for m in islice(_SCRIPT_URL.finditer(scripts), 100))


def _inspect_html(payload: bytes, limits: AttachmentLimits) -> tuple[tuple[str, ...], str]:
    """HTML tricks (login forms, redirects, smuggling, obfuscation) and the text with every link,
    including markup hidden in encoded script strings (decoded, not run; three layers at most)."""
    features: list[str] = []
    texts: list[str] = []
    budget = _HIDDEN_TOTAL
    pending = [(_decode(payload[: limits.max_html_bytes]), 0)]
    while pending:
        markup, layer = pending.pop(0)
        hidden = _hidden_strings(markup, budget) if layer < 3 else []
        budget -= sum(len(text) for text in hidden)
        _read_markup(markup, hidden, features, texts)
        pending.extend((text, layer + 1) for text in hidden)
    return tuple(features), "\n".join(texts)[: limits.max_text_chars]


_PDF_URI = re.compile(rb"/URI\s*\(((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\)){1,4096})\)", re.DOTALL)
_PDF_URI_HEX = re.compile(rb"/URI\s*<([0-9A-Fa-f\s]{2,8192})>")
_PDF_ESCAPES = re.compile(rb"\\([nrtbf()\\]|[0-7]{1,3}|\r?\n)")
_PDF_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm")
_PDF_FEATURES = ((b"/JavaScript", "javascript"), (b"/JS", "javascript"), (b"/OpenAction", "open_action"),
                 (b"/Launch", "launch"), (b"/EmbeddedFile", "embedded_file"), (b"/SubmitForm", "submit_form"),
                 (b"/Encrypt", "encrypted"), (b"/AA", "additional_actions"))


def _has_name(body: bytes, name: bytes) -> bool:
    """A PDF name such as /JS occurs as itself (not as the start of a longer name like /JSFoo)."""
    pos = body.find(name)
    for _ in range(1000):
        if pos < 0:
            return False
        after = body[pos + len(name) : pos + len(name) + 1]
        if not after.isalnum():
            return True
        pos = body.find(name, pos + 1)
    return False


def _pdf_string(raw: bytes) -> str:
    def unescape(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(code, code.strip(b"\r\n"))

    value = _PDF_ESCAPES.sub(unescape, raw)
    if value.startswith(b"\xfe\xff"):
        return value[2:].decode("utf-16-be", "replace")
    return value.decode("latin-1")


def _pdf_object_streams(payload: bytes, scan: _Scan) -> bytes:
    """Decompressed object streams (PDF 1.5+ keeps link annotations there), bounded."""
    out: list[bytes] = []
    budget = 4 * 1024 * 1024
    for match in islice(_PDF_OBJECT_STREAM.finditer(payload), 50):
        start = payload.find(b"stream", match.end(), match.end() + 2048)
        if start < 0:
            continue
        start += len(b"stream")
        start += 2 if payload[start : start + 2] == b"\r\n" else 1
        try:
            data = zlib.decompressobj().decompress(payload[start : start + budget], budget)
        except zlib.error:
            continue
        scan.decompressed += len(data)
        budget -= len(data)
        out.append(data)
        if budget <= 0:
            break
    return b"\n".join(out)


def _inspect_pdf(payload: bytes, limits: AttachmentLimits, scan: _Scan) -> tuple[tuple[str, ...], str]:
    """Link targets (/URI) and active content (/JavaScript, /Launch, ...), without rendering anything."""
    body = payload
    if b"/ObjStm" in payload:
        body = payload + b"\n" + _pdf_object_streams(payload, scan)
    features: list[str] = []
    for keyword, name in _PDF_FEATURES:
        if name not in features and _has_name(body, keyword):
            features.append(name)
    links: list[str] = []
    if b"/URI" in body:
        for match in islice(_PDF_URI.finditer(body), 500):
            links.append(_pdf_string(match.group(1)))
        for match in islice(_PDF_URI_HEX.finditer(body), 500):
            hexdigits = re.sub(rb"\s+", b"", match.group(1))
            links.append(_pdf_string(bytes.fromhex((hexdigits + b"0" * (len(hexdigits) % 2)).decode())))
    return tuple(features), "\n".join(dict.fromkeys(links))[: limits.max_text_chars]


def _shortcut_target(text: str) -> str:
    match = re.search(r"^\s*URL\s*=\s*(\S[^\r\n]*)", text, re.IGNORECASE | re.MULTILINE)
    icon = re.search(r"^\s*IconFile\s*=\s*(\\\\[^\r\n]*|file:[^\r\n]*)", text, re.IGNORECASE | re.MULTILINE)
    if match and not (icon and match.group(1).lower().startswith(("http://", "https://"))):
        return match.group(1).strip()
    return icon.group(1).strip() if icon else ""


# --- entry point ---------------------------------------------------------------------------------

_HTML_EXTENSIONS = frozenset({"htm", "html", "shtml", "xhtml", "xht", "svg", "mht", "mhtml"})


def inspect_attachment(
    filename: str, declared_type: str, payload: bytes, limits: AttachmentLimits | None = None
) -> Attachment:
    """Describe one attachment; anything unreadable becomes a defect on it. Never raises."""
    limits = limits or AttachmentLimits()
    payload = bytes(payload)
    scan = _Scan(limits, filename)
    attachment = Attachment(
        filename=filename,
        declared_type=declared_type,
        sniffed_type=sniff(payload),
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
    )
    try:
        return _inspect(attachment, payload, scan)
    except Exception:  # a bug or an input nobody foresaw: keep what is known, never lose the mail
        scan.defect("inspect_failed")
        return replace(attachment, members=tuple(scan.members), encrypted=scan.encrypted,
                       defects=tuple(scan.defects))


def _inspect(attachment: Attachment, payload: bytes, scan: _Scan) -> Attachment:
    limits = scan.limits
    kind = attachment.sniffed_type
    extension = attachment.extension
    declared = attachment.declared_type.lower()
    changes: dict[str, Any] = {}
    if kind in _ARCHIVES:
        kind, has_macros = _read_archive(kind, payload, 1, "", scan)
        changes["sniffed_type"] = kind
        if kind in ("ooxml", "odf"):
            scan.members.clear()  # the parts of a document are not what the reader sees as contents
            changes["has_macros"] = has_macros
            if scan.vba_project:
                _, indicators = _analyze_vba("vbaProject.bin", scan.vba_project, scan)
                changes["macro_indicators"] = indicators
            elif scan.xlm_macros:
                changes["macro_indicators"] = ("Suspicious:XLM macro",)
    elif kind == "ole":
        has_macros, indicators = _inspect_ole(attachment.filename, extension, payload, scan)
        changes.update(has_macros=has_macros, macro_indicators=indicators)
    elif kind in ("html", "svg") or (kind == "unknown" and (
            extension in _HTML_EXTENSIONS or declared in ("text/html", "image/svg+xml", "application/xhtml+xml"))):
        changes["html_features"], changes["text"] = _inspect_html(payload, limits)
    elif kind == "pdf":
        changes["pdf_features"], changes["text"] = _inspect_pdf(payload, limits, scan)
    elif kind == "url_shortcut" or extension in ("url", "website"):
        text = _decode(payload[:65536])
        changes.update(text=text[: limits.max_text_chars], shortcut_target=_shortcut_target(text))
    elif kind == "unknown" and (declared.startswith(_TEXT_TYPES) or extension in _TEXT_EXTENSIONS) \
            and b"\x00" not in payload[:1024]:
        changes["text"] = _decode(payload[: limits.max_text_chars * 4])[: limits.max_text_chars]
    return replace(attachment, members=tuple(scan.members), encrypted=scan.encrypted,
                   defects=tuple(scan.defects), **changes)
