"""Header anomalies: who the message says it is from, against who it really comes from.

From vs Reply-To vs Sender vs Return-Path, an address hidden in a display name, missing or
duplicated fields, and the MIME defects the parser met.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mailwarden.detection import fold
from mailwarden.forwarded import forwarded_original
from mailwarden.urls import has_unknown_tld, public_suffix

if TYPE_CHECKING:
    from mailwarden.message import Address, Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal

NAME = "headers"
SIGNALS = (
    "header.reply_to_mismatch",
    "header.reply_to_freemail",
    "header.sender_mismatch",
    "header.return_path_mismatch",
    "header.address_in_display_name",
    "header.missing_message_id",
    "header.missing_from",
    "header.multiple_from",
    "header.display_name_symbols",
    "header.undisclosed_recipients",
    "header.unknown_tld",
    "header.abused_tld",
    "mime.malformed",
    "mime.limits_exceeded",
)

_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)", re.UNICODE)
_LIMIT_DEFECTS = {"message_too_large", "mime_too_deep", "too_many_parts", "html_truncated", "text_truncated",
                  "too_many_urls", "header_too_long"}
_STRUCTURE_DEFECTS = {
    "StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect", "MultipartInvariantViolationDefect",
    "InvalidMultipartContentTransferEncodingDefect", "MissingHeaderBodySeparatorDefect",
    "MisplacedEnvelopeHeaderDefect", "unparseable", "malformed_from", "nul_bytes", "undecodable_payload",
    "InvalidBase64PaddingDefect", "InvalidBase64CharactersDefect", "InvalidBase64LengthDefect",
    "unknown_transfer_encoding", "unknown_charset", "bad_encoded_word",
}


def _related(a: str, b: str, context: Context) -> bool:
    """Two registrable domains belong to the same party (same domain, or both ours / one partner's)."""
    if a == b:
        return True
    org = context.org
    if org.is_own_domain(a) and org.is_own_domain(b):
        return True
    partner = org.partner_for_domain(a)
    return partner is not None and partner is org.partner_for_domain(b)


def _reply_to(message: Message, sender: Address, context: Context) -> list[Signal]:
    signals: list[Signal] = []
    for reply in message.reply_to:
        if not reply.domain or _related(reply.registrable_domain, sender.registrable_domain, context):
            continue
        if reply.registrable_domain in context.data.freemail and sender.registrable_domain not in context.data.freemail:
            signals.append(context.signal(
                "header.reply_to_freemail",
                f"replies go to free-mail address {reply.email}, not to {sender.domain}",
                reply_to=reply.email, from_domain=sender.domain))
        else:
            signals.append(context.signal(
                "header.reply_to_mismatch",
                f"replies go to {reply.registrable_domain}, not to the sender's {sender.registrable_domain}",
                reply_to=reply.email, from_domain=sender.domain))
        break
    return signals


def _address_in_display_name(sender: Address, context: Context) -> list[Signal]:
    match = _EMAIL_IN_TEXT.search(sender.display_name)
    if not match:
        return []
    shown = match.group(0).lower()
    if shown == sender.email or match.group(1).lower().endswith(sender.registrable_domain):
        return []
    return [context.signal("header.address_in_display_name",
                           f"display name shows {shown} but the mail is from {sender.email}",
                           shown=shown, actual=sender.email)]


def _display_name_symbols(sender: Address, context: Context) -> list[Signal]:
    """Emoji, money signs and decorative letters in a sender name: a hallmark of bulk lures."""
    name = sender.display_name
    if not name:
        return []
    odd = [ch for ch in name if ord(ch) >= 0x2190 and not ch.isalpha()]
    styled = fold(name) != name.lower() and any(ord(ch) >= 0x1D400 for ch in name)
    if not odd and not styled and "$" not in name:
        return []
    return [context.signal("header.display_name_symbols", f"sender name decorated with symbols: {name[:60]}",
                           display_name=name[:120])]


def _defects(message: Message, context: Context) -> list[Signal]:
    kinds = {d.kind for d in message.defects}
    signals = []
    limits = sorted(kinds & _LIMIT_DEFECTS)
    if limits:
        signals.append(context.signal("mime.limits_exceeded", f"message exceeds parser limits: {', '.join(limits)}",
                                      defects=limits))
    structure = sorted(kinds & _STRUCTURE_DEFECTS)
    if structure:
        signals.append(context.signal("mime.malformed", f"malformed MIME structure: {', '.join(structure)}",
                                      defects=structure))
    return signals


def _unknown_tld(sender: Address, context: Context) -> list[Signal]:
    if not has_unknown_tld(sender.domain) or context.org.is_own_domain(sender.domain):
        return []
    return [context.signal("header.unknown_tld", f"From domain {sender.domain} has no real top-level domain",
                           domain=sender.domain)]


def _abused_tld(sender: Address, context: Context) -> list[Signal]:
    suffix = public_suffix(sender.domain)
    if suffix not in context.data.abused_tlds or context.org.is_own_domain(sender.domain):
        return []
    return [context.signal("header.abused_tld", f"From domain {sender.domain} is under .{suffix}, where most "
                           "domains seen in mail are throwaway", domain=sender.domain, suffix=suffix)]


def _forwarded_sender(message: Message, found: list[Signal], context: Context) -> list[Signal]:
    """The sender of a message forwarded inline, held to the same standard as the forwarder."""
    original = forwarded_original(message)
    if original is None or original.sender is None:
        return []
    seen = {s.id for s in found}
    return [s for s in _unknown_tld(original.sender, context) + _display_name_symbols(original.sender, context)
            if s.id not in seen]


def analyze(message: Message, context: Context) -> list[Signal]:
    signals = _defects(message, context)
    if not message.message_id:
        signals.append(context.signal("header.missing_message_id", "no Message-ID header"))
    if len(message.header_all("From")) > 1 or len(message.from_all) > 1:
        signals.append(context.signal("header.multiple_from", "more than one From address",
                                      addresses=[a.email for a in message.from_all]))
    to_header = (message.header("To") or "").lower()
    if (not message.to and not message.cc) or "undisclosed" in to_header:
        signals.append(context.signal("header.undisclosed_recipients", "no visible recipients (To is empty or "
                                      "undisclosed)"))
    sender = message.from_
    if sender is None or not sender.domain:
        signals.append(context.signal("header.missing_from", "no usable From address"))
        return signals
    signals += _unknown_tld(sender, context) or _abused_tld(sender, context)
    signals += _reply_to(message, sender, context)
    signals += _address_in_display_name(sender, context)
    signals += _display_name_symbols(sender, context)
    signals += _forwarded_sender(message, signals, context)
    if message.sender and message.sender.domain and not _related(
            message.sender.registrable_domain, sender.registrable_domain, context):
        signals.append(context.signal(
            "header.sender_mismatch", f"Sender {message.sender.email} differs from From {sender.email}",
            sender=message.sender.email, from_=sender.email))
    rp = message.return_path
    if rp and rp.domain and not _related(rp.registrable_domain, sender.registrable_domain, context):
        signals.append(context.signal(
            "header.return_path_mismatch", f"bounces go to {rp.registrable_domain}, not {sender.registrable_domain}",
            return_path=rp.email, from_=sender.email))
    return signals
