"""Bounds on what reading one report may cost; every limit names itself when it is hit."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Safe defaults for reports from anyone who can send mail to the report address.

    ``max_report_bytes`` bounds the XML or JSON of one report after decompression (zip and gzip bombs
    stop there); aggregate XML is streamed, so memory does not grow with it. ``max_message_bytes``
    bounds an email (or a zip archive) read whole; ``max_json_bytes`` an SMTP TLS report, which is
    read whole as JSON must be. ``max_records`` bounds the records of one aggregate report.
    """

    max_report_bytes: int = 1024 * MiB
    max_message_bytes: int = 64 * MiB
    max_json_bytes: int = 32 * MiB
    max_archive_members: int = 32
    max_records: int = 10_000_000
    max_records_before_metadata: int = 100_000
    max_parts: int = 256  # MIME parts of an email looked at
    chunk_bytes: int = 256 * 1024  # how much XML is parsed at a time (bounds the elements alive at once)


DEFAULT_LIMITS = Limits()
