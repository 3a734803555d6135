"""What a decision does to a message: the action, the header fields we add, the bytes we deliver.

    action_for(verdict)                      deliver | banner (warn) | quarantine | reject
    decision_fields(auth_header, result)     Authentication-Results and X-Mailwarden-Verdict/Score/Signals
    delivery_bytes(raw, prepend, banner, authserv_id)
        the raw message without header fields that claim to be ours (X-Mailwarden-*, Authentication-Results
        with our authserv-id: a sender could forge them), with the warn banner when there is one, and with
        our own fields in front. Computed at delivery time from the spooled original, so the original is
        all that is stored, and a release delivers exactly it.
    delivery_id_field(ref, entry_id)         X-Mailwarden-Delivery-Id: the same on every attempt of a queue entry
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime
from enum import StrEnum
from typing import Any

from mailwarden.gateway.banner import clean_reason, insert_banner
from mailwarden.pipeline import ScanResult
from mailwarden.signals import Verdict

OUR_PREFIX = "x-mailwarden-"  # every field named so is ours: a sender's are removed
DELIVERY_ID = "X-Mailwarden-Delivery-Id"
MAX_FIELD_LINE = 78
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_COMMENT = re.compile(r"\([^()]*\)")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


class Action(StrEnum):
    DELIVER = "deliver"
    BANNER = "banner"  # warn: deliver with a banner
    QUARANTINE = "quarantine"
    REJECT = "reject"


def action_for(verdict: Verdict) -> Action:
    return {Verdict.DELIVER: Action.DELIVER, Verdict.WARN: Action.BANNER, Verdict.QUARANTINE: Action.QUARANTINE,
            Verdict.REJECT: Action.REJECT}[verdict]


def banner_reason(result: ScanResult) -> str:
    """The warn banner's reason in plain words: what the strongest signals found."""
    deciding = [s.detail for s in result.signals if s.score > 0][:2]
    if not deciding:
        return "Mailwarden found this message suspicious."
    return clean_reason("; ".join(d[:1].upper() + d[1:] for d in deciding) + ".")


def _safe(value: str) -> str:
    return _UNSAFE.sub(" ", value)


def fold(items: Sequence[str], name_length: int, separator: str = ",") -> str:
    """Items joined with the separator, folded onto continuation lines of at most ~78 characters."""
    lines: list[str] = []
    current = ""
    width = name_length + 2
    for item in items:
        piece = item if not current else f"{current}{separator} {item}"
        if current and width + len(piece) > MAX_FIELD_LINE:
            lines.append(current + separator)
            current, width = item, 1
        else:
            current = piece
    lines.append(current)
    return "\r\n\t".join(lines)


def decision_fields(auth_header: str, verdict: str, score: int, signals: Sequence[Mapping[str, Any]],
                    authserv_id: str) -> list[tuple[str, str]]:
    """Our Authentication-Results and X-Mailwarden-Verdict/Score/Signals (signals as ``id=+score``)."""
    fields = [("Authentication-Results", auth_header or f"{authserv_id}; none")]
    fields.append(("X-Mailwarden-Verdict", verdict))
    fields.append(("X-Mailwarden-Score", str(score)))
    listed = [f"{_safe(str(s['id']))}={int(s['score']):+d}" for s in signals if s.get("score")]
    fields.append(("X-Mailwarden-Signals", fold(listed, len("X-Mailwarden-Signals")) if listed else "none"))
    return fields


def signal_dicts(result: ScanResult) -> list[dict[str, Any]]:
    """The signals as stored and shown: id, score, detail."""
    return [{"id": s.id, "score": s.score, "detail": s.detail} for s in result.signals]


def received_field(*, helo: str, client_ip: str, by: str, ref: str, tls: bool, recipients: Sequence[str],
                   when: datetime) -> tuple[str, str]:
    """Our trace field (RFC 5321 4.4)."""
    parts = [f"from {_safe(helo) or 'unknown'} ([{_safe(client_ip)}])", f"by {by} (Mailwarden)",
             f"with {'ESMTPS' if tls else 'ESMTP'} id {ref}"]
    if len(recipients) == 1:
        parts.append(f"for <{_safe(recipients[0])}>")
    return "Received", "\r\n\t".join(parts) + f"; {format_datetime(when)}"


def delivery_id_field(ref: str, entry_id: int) -> tuple[str, str]:
    """The delivery id of a queue entry, ``<message ref>.<entry id>``: identical on every attempt, different
    for every other delivery (another recipient group, a release from quarantine, the same message accepted
    twice). SMTP leaves one window for a duplicate (RFC 1047: the next hop's 250 lost or not yet read when
    the connection or the process dies), and a mailbox can close it by dropping a second message with the
    same id (Sieve ``duplicate :header``). Prepended with our other fields, like Received, so no DKIM
    signature of the original is touched; a sender's own is removed with every other ``X-Mailwarden-*``
    field, so nobody can make the mailbox drop a message by guessing an id."""
    return DELIVERY_ID, f"{ref}.{entry_id}"


def render_fields(fields: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in fields)


def _authserv_id(value: bytes) -> str:
    text = _COMMENT.sub(" ", value.decode("latin-1"))
    return text.split(";", 1)[0].strip().lower()


def strip_our_fields(raw: bytes, authserv_id: str) -> bytes:
    """The message without X-Mailwarden-* fields and without Authentication-Results naming our authserv-id."""
    match = _HEADER_END.search(raw)
    cut = match.start() + (2 if raw.startswith(b"\r\n", match.start()) else 1) if match else len(raw)
    head, body = raw[:cut], raw[cut:]  # the header lines with their line ends; the body from its blank line
    lines = head.splitlines(keepends=True)
    kept: list[bytes] = []
    dropping = False
    ours = authserv_id.lower()
    for index, line in enumerate(lines):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        name, _, value = line.partition(b":")
        lowered = name.strip().lower().decode("latin-1")
        if lowered == "authentication-results":
            value = b"".join([value, *_continuations(lines, index)])
            dropping = _authserv_id(value) == ours
        else:
            dropping = lowered.startswith(OUR_PREFIX)
        if not dropping:
            kept.append(line)
    return b"".join(kept) + body


def _continuations(lines: list[bytes], index: int) -> list[bytes]:
    found = []
    for line in lines[index + 1:]:
        if line[:1] not in (b" ", b"\t"):
            break
        found.append(line)
    return found


def delivery_bytes(raw: bytes, prepend: str, banner: str | None, authserv_id: str) -> bytes:
    """The bytes to hand to the next hop (see the module docstring)."""
    message = strip_our_fields(raw, authserv_id)
    if banner:
        message = insert_banner(message, banner)
    return prepend.encode("utf-8") + message
