"""The warn banner: a visible caution at the top of the text and HTML bodies, the rest of the message unchanged.

    insert_banner(raw, "This sender imitates your partner Globex Logistics") -> bytes

Works on the bytes: headers, other parts, boundaries and attachments are copied as they are; only the first
readable text/plain and text/html bodies (not attachments, not inside attached messages) get the banner.
In a quoted-printable plain body the encoded banner is put in front of the untouched encoded text;
base64 and HTML quoted-printable bodies are decoded, given the banner and encoded again. The reason is
escaped for HTML and stripped of control characters; a body whose charset is unknown or not ASCII-
compatible is left as it is rather than damaged.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
from dataclasses import dataclass, field
from email.message import Message as EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32

MAX_DEPTH = 20
MAX_REASON = 400
TITLE = "Caution: this message may not be what it seems."
HTML_STYLE = ("border:2px solid #b00020;background:#fff4f4;color:#000000;padding:8px 12px;margin:0 0 12px 0;"
              "font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.4")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_BODY_TAG = re.compile(rb"<body\b[^>]*>", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf_16", "utf_32", "utf-7", "utf_7")


def clean_reason(reason: str) -> str:
    """One line of plain words: no control or bidi characters, bounded length."""
    text = " ".join(_CONTROL.sub(" ", reason).split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def text_banner(reason: str, newline: str = "\r\n") -> str:
    rule = "-" * 72
    return f"{rule}{newline}{TITLE}{newline}{clean_reason(reason)}{newline}{rule}{newline}{newline}"


def html_banner(reason: str) -> str:
    return (f'<div style="{HTML_STYLE}"><strong>{html.escape(TITLE)}</strong><br>'
            f"{html.escape(clean_reason(reason))}</div>")


@dataclass
class _State:
    reason: str
    done: set[str] = field(default_factory=set)


def insert_banner(raw: bytes, reason: str) -> bytes:
    """The message with the banner at the top of its first text and HTML bodies."""
    return _entity(raw, _State(reason), 0, "text/plain")


def _split(data: bytes) -> tuple[bytes, bytes]:
    """Header block (with its blank line) and body; a part without headers starts with its blank line."""
    if data.startswith((b"\r\n", b"\n")):
        cut = 2 if data.startswith(b"\r\n") else 1
        return data[:cut], data[cut:]
    match = _HEADER_END.search(data)
    if match is None:
        return data, b""
    return data[: match.end()], data[match.end():]


def _headers(block: bytes, default_type: str) -> EmailMessage:
    parsed = BytesHeaderParser(policy=compat32).parsebytes(block.rstrip(b"\r\n") + b"\r\n\r\n")
    if parsed.get("Content-Type") is None:
        parsed.set_default_type(default_type)
    return parsed


def _entity(data: bytes, state: _State, depth: int, default_type: str) -> bytes:
    if depth > MAX_DEPTH:
        return data
    head, body = _split(data)
    headers = _headers(head, default_type)
    content_type = headers.get_content_type()
    if content_type.startswith("multipart/"):
        boundary = headers.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            return data
        child_default = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
        return head + _multipart(body, boundary.encode("ascii", "replace"), state, depth, child_default)
    disposition = (headers.get("Content-Disposition") or "").strip().lower()
    if disposition.startswith("attachment") or headers.get_filename():
        return data
    kind = {"text/plain": "plain", "text/html": "html"}.get(content_type)
    if kind is None or kind in state.done:
        return data
    changed = _leaf(body, headers, kind, state.reason)
    if changed is None:
        return data
    state.done.add(kind)
    return head + changed


def _multipart(body: bytes, boundary: bytes, state: _State, depth: int, child_default: str) -> bytes:
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|$)")
    matches = list(delimiter.finditer(body))
    if not matches:
        return body
    out = [body[: matches[0].start()]]
    for current, following in zip(matches, [*matches[1:], None], strict=True):
        out.append(body[current.start(): current.end()])
        end = following.start() if following is not None else len(body)
        part = body[current.end(): end]
        if current.group(1) or following is None:  # the epilogue, or a part that never closes: copied as is
            out.append(part)
            continue
        out.append(_entity(part, state, depth + 1, child_default))
    return b"".join(out)


def _codec(charset: str) -> str | None:
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return None
    return None if name.startswith(_NOT_ASCII_COMPATIBLE) else name


def _leaf(body: bytes, headers: EmailMessage, kind: str, reason: str) -> bytes | None:
    encoding = (headers.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    charset = _codec(headers.get_content_charset() or ("us-ascii" if kind == "plain" else "utf-8"))
    if charset is None or encoding not in ("7bit", "8bit", "binary", "quoted-printable", "base64"):
        return None
    newline = "\n" if b"\n" in body and b"\r\n" not in body else "\r\n"
    errors = "xmlcharrefreplace" if kind == "html" else "replace"
    if encoding == "7bit":
        charset = "ascii"
    banner = (html_banner(reason) + newline if kind == "html" else text_banner(reason, newline)).encode(charset, errors)
    if encoding in ("7bit", "8bit", "binary"):
        return _splice(body, banner, kind)
    if encoding == "quoted-printable" and kind == "plain":
        return binascii.b2a_qp(banner, istext=True) + body  # keeps the banner's own line ends
    try:
        decoded = binascii.a2b_qp(body) if encoding == "quoted-printable" else base64.b64decode(body)
    except (binascii.Error, ValueError):
        return None
    spliced = _splice(decoded, banner, kind)
    if encoding == "base64":
        flat = base64.b64encode(spliced)
        lines = [flat[i: i + 76] for i in range(0, len(flat), 76)]
        return newline.encode().join(lines) + newline.encode()
    return binascii.b2a_qp(spliced, istext=True)


def _splice(body: bytes, banner: bytes, kind: str) -> bytes:
    if kind == "html":
        tag = _BODY_TAG.search(body)
        if tag is not None:
            return body[: tag.end()] + banner + body[tag.end():]
    return banner + body
