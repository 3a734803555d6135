"""Raw bytes to an immutable, typed view of a message.

``parse`` never raises on malformed input: what is wrong is recorded as a ``Defect`` and parsing goes
on with what can be read. Limits on size, MIME depth, parts, URLs and attachment expansion are
enforced here and reported as defects, so a hostile message costs bounded time and memory.
"""

from __future__ import annotations

import codecs
import html as html_lib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header
from email.message import Message as EmailMessage
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from mailwarden.attachments import Attachment, AttachmentLimits, inspect_attachment
from mailwarden.authresults import AuthResults, parse_authentication_results
from mailwarden.html import HtmlDocument, parse_html
from mailwarden.urls import Url, find_in_text, normalize, registrable_domain, to_ascii_host


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 25 * 1024 * 1024
    max_depth: int = 20
    max_parts: int = 500
    max_header_chars: int = 64 * 1024
    max_text_chars: int = 1_000_000
    max_html_bytes: int = 4 * 1024 * 1024
    max_urls: int = 500
    attachments: AttachmentLimits = field(default_factory=AttachmentLimits)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Defect:
    kind: str
    detail: str = ""


@dataclass(frozen=True)
class Envelope:
    """What the SMTP transaction said, when the message came over SMTP."""

    client_ip: str | None = None
    helo: str | None = None
    mail_from: str | None = None
    rcpt_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Address:
    display_name: str
    email: str
    local_part: str
    domain: str  # ASCII (punycode), lower case
    domain_unicode: str

    @property
    def registrable_domain(self) -> str:
        return registrable_domain(self.domain) if self.domain else ""


@dataclass(frozen=True)
class ReceivedHop:
    from_text: str
    by_host: str
    ip: str | None
    raw: str


@dataclass(frozen=True)
class Part:
    content_type: str
    filename: str
    size: int
    depth: int


@dataclass(frozen=True)
class Message:
    headers: tuple[tuple[str, str], ...]
    subject: str
    message_id: str
    from_: Address | None
    from_all: tuple[Address, ...]
    sender: Address | None
    reply_to: tuple[Address, ...]
    return_path: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    auth: tuple[AuthResults, ...]
    received: tuple[ReceivedHop, ...]
    text_plain: str
    text_html: str  # HTML bodies rendered to text
    html: tuple[HtmlDocument, ...]
    urls: tuple[Url, ...]
    attachments: tuple[Attachment, ...]
    parts: tuple[Part, ...]
    defects: tuple[Defect, ...]
    size: int
    envelope: Envelope | None = None

    def header(self, name: str) -> str | None:
        """The first value of a header field (unfolded), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    @property
    def text(self) -> str:
        """All body text a reader sees: the plain part, or the rendered HTML when there is no plain."""
        if self.text_plain and self.text_html:
            return self.text_html if len(self.text_html) > len(self.text_plain) else self.text_plain
        return self.text_plain or self.text_html

    def auth_method(self, method: str) -> list[str]:
        """Results of one method (spf, dkim, dmarc, arc) across the trusted headers."""
        return [r.result for ar in self.auth for r in ar.method(method)]


# --- headers -------------------------------------------------------------------------------------

def _text_of(value: object) -> str:
    text = str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        raw = text.encode("utf-8", "surrogateescape")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    return text


def decode_words(value: str, defects: list[Defect] | None = None) -> str:
    """RFC 2047 encoded words to text; undecodable charsets fall back without raising."""
    if "=?" not in value:
        return " ".join(value.split())
    try:
        chunks = decode_header(value)
    except (ValueError, IndexError, AssertionError):
        if defects is not None:
            defects.append(Defect("bad_encoded_word", value[:80]))
        return " ".join(value.split())
    out: list[str] = []
    for data, charset in chunks:
        if isinstance(data, str):
            out.append(data)
            continue
        out.append(_decode_bytes(data, charset, defects))
    return " ".join("".join(out).split())


def _decode_bytes(data: bytes, charset: str | None, defects: list[Defect] | None) -> str:
    name = (charset or "utf-8").lower().strip()
    if name in ("unknown-8bit", "x-unknown", ""):
        name = "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        if defects is not None:
            defects.append(Defect("unknown_charset", name[:40]))
        name = "utf-8"
    try:
        return data.decode(name)
    except UnicodeDecodeError:
        return data.decode(name, errors="replace")
    except LookupError:  # codecs that look up fine but fail on use
        return data.decode("utf-8", errors="replace")


def _address(display: str, email_addr: str, defects: list[Defect]) -> Address | None:
    email_addr = email_addr.strip().strip("<>").strip()
    if not email_addr and not display:
        return None
    display_name = decode_words(display, defects).strip().strip('"').strip()
    local, _, domain = email_addr.rpartition("@")
    if not _:
        local, domain = email_addr, ""
    ascii_domain, unicode_domain = to_ascii_host(domain)
    normalized = f"{local}@{ascii_domain}" if ascii_domain else local
    return Address(display_name, normalized.lower(), local, ascii_domain, unicode_domain)


def _addresses(values: list[str], defects: list[Defect]) -> tuple[Address, ...]:
    found: list[Address] = []
    for display, email_addr in getaddresses(values):
        address = _address(display, email_addr, defects)
        if address is not None:
            found.append(address)
    return tuple(found)


_ANGLE_ADDRESS = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")


def _from_addresses(values: list[str], defects: list[Defect]) -> tuple[Address, ...]:
    """From addresses as a mail client shows them, even when the display name is not quoted.

    ``Microsoft account team ,_<x@evil.example>`` is one sender named "Microsoft account team ,_" to a
    reader, not two addresses; such a header is recorded as a defect.
    """
    found = _addresses(values, defects)
    if len(values) == 1 and (len(found) != 1 or not found[0].domain):
        angles = _ANGLE_ADDRESS.findall(values[0])
        if len(angles) == 1:
            defects.append(Defect("malformed_from", values[0][:120]))
            display = values[0][: values[0].find("<" + angles[0])].strip().strip('"').strip()
            address = _address(display, angles[0], defects)
            return (address,) if address else found
    return found


def _single_address(value: str | None, defects: list[Defect]) -> Address | None:
    if not value:
        return None
    display, email_addr = parseaddr(value)
    if not email_addr and "<" in value:
        email_addr = value[value.find("<") + 1 : value.rfind(">")] if ">" in value else ""
    return _address(display, email_addr, defects)


_RECEIVED_IP = re.compile(r"\[(?:IPv6:)?([0-9a-fA-F:.]{3,45})\]|\(([0-9]{1,3}(?:\.[0-9]{1,3}){3})\)")
_RECEIVED_BY = re.compile(r"\bby\s+([^\s;()]+)", re.IGNORECASE)
_RECEIVED_FROM = re.compile(r"^\s*from\s+(.*?)(?=\s+by\s|\s+with\s|;|$)", re.IGNORECASE | re.DOTALL)


def _received_hop(raw: str) -> ReceivedHop:
    from_match = _RECEIVED_FROM.search(raw)
    from_text = from_match.group(1).strip() if from_match else ""
    ip = None
    for m in _RECEIVED_IP.finditer(from_text):
        ip = m.group(1) or m.group(2)
        break
    by_match = _RECEIVED_BY.search(raw)
    return ReceivedHop(from_text=from_text[:300], by_host=(by_match.group(1).lower() if by_match else ""),
                       ip=ip, raw=raw[:1000])


def _trusted_auth(headers: list[tuple[str, str]], authserv_id: str | None) -> tuple[AuthResults, ...]:
    """Auth results from our own boundary (authserv-id); without one configured, the topmost header."""
    parsed = [parse_authentication_results(v) for k, v in headers if k.lower() == "authentication-results"]
    if authserv_id is None:
        return tuple(parsed[:1])
    wanted = authserv_id.lower()
    return tuple(ar for ar in parsed if ar.authserv_id == wanted)


# --- body ----------------------------------------------------------------------------------------

def _walk(root: EmailMessage, limits: Limits, defects: list[Defect]) -> Iterator[tuple[EmailMessage, int]]:
    """Depth-first over the MIME tree without recursion, within the depth and part limits."""
    stack: list[tuple[EmailMessage, int]] = [(root, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > limits.max_parts:
            defects.append(Defect("too_many_parts", f"stopped after {limits.max_parts} parts"))
            return
        yield part, depth
        if part.is_multipart():
            children = part.get_payload()
            if not isinstance(children, list):
                continue
            if depth + 1 > limits.max_depth:
                defects.append(Defect("mime_too_deep", f"parts below depth {limits.max_depth} not read"))
                continue
            stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, EmailMessage))


def _part_text(part: EmailMessage, payload: bytes, defects: list[Defect]) -> str:
    charset = part.get_content_charset() or "us-ascii"
    if charset in ("us-ascii", "ascii"):
        charset = "utf-8"  # undeclared 8-bit text is most often UTF-8
    text = _decode_bytes(payload, charset, defects)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text


def _is_attachment(part: EmailMessage, content_type: str, filename: str) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment":
        return True
    if content_type in ("text/plain", "text/html"):
        return bool(filename)
    return True


def _filename(part: EmailMessage, defects: list[Defect]) -> str:
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except (ValueError, IndexError, TypeError):
        defects.append(Defect("bad_filename"))
        return ""
    if isinstance(name, tuple):  # RFC 2231 value that email could not decode
        name = _decode_bytes(name[2].encode("latin-1", "replace"), name[0], defects)
    return decode_words(_text_of(name), defects)[:255]


def _payload(part: EmailMessage, defects: list[Defect]) -> bytes:
    cte = (part.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte and cte not in ("7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode"):
        defects.append(Defect("unknown_transfer_encoding", cte[:40]))
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError) as exc:
        defects.append(Defect("undecodable_payload", str(exc)[:80]))
        return b""
    if data is None:
        raw = part.get_payload()
        return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    return data if isinstance(data, bytes) else b""


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html_text: list[str] = field(default_factory=list)
    html: list[HtmlDocument] = field(default_factory=list)
    urls: list[Url] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    text_chars: int = 0


def _add_urls(body: _Body, urls: list[Url], limits: Limits, defects: list[Defect]) -> None:
    room = limits.max_urls - len(body.urls)
    if room <= 0:
        if urls and not any(d.kind == "too_many_urls" for d in defects):
            defects.append(Defect("too_many_urls", f"only the first {limits.max_urls} URLs were kept"))
        return
    body.urls.extend(urls[:room])
    if len(urls) > room:
        defects.append(Defect("too_many_urls", f"only the first {limits.max_urls} URLs were kept"))


def _read_html(body: _Body, text: str, limits: Limits, defects: list[Defect]) -> None:
    if len(text) > limits.max_html_bytes:
        defects.append(Defect("html_truncated", f"HTML part over {limits.max_html_bytes} characters"))
        text = text[: limits.max_html_bytes]
    document = parse_html(text, max_links=limits.max_urls)
    body.html.append(document)
    body.html_text.append(document.text)
    found: list[Url] = []
    for link in document.links:
        url = normalize(link.href, link.kind, link.text)
        if url:
            found.append(url)
    found.extend(find_in_text(document.text, "text", limits.max_urls))
    _add_urls(body, found, limits, defects)


_ENTITY = re.compile(r"&(?:[a-z]{2,8}|#\d{2,5}|#x[0-9a-f]{2,4});", re.IGNORECASE)
_HTML_TAGS = re.compile(r"<(?:html|body|div|table|p|br|a\s|span|td|font|img)\b", re.IGNORECASE)


def _looks_like_html(text: str) -> bool:
    """A text/plain part that is really markup (senders get the type wrong, phishers on purpose)."""
    head = text[:4096]
    return head.lstrip()[:1] == "<" and len(_HTML_TAGS.findall(head)) >= 3


def _read_body(root: EmailMessage, limits: Limits, defects: list[Defect]) -> _Body:
    body = _Body()
    for part, depth in _walk(root, limits, defects):
        for defect in getattr(part, "defects", []):
            defects.append(Defect(type(defect).__name__, str(defect)[:120]))
        if part.is_multipart():
            continue
        content_type = part.get_content_type().lower()
        filename = _filename(part, defects)
        payload = _payload(part, defects)
        body.parts.append(Part(content_type, filename, len(payload), depth))
        if _is_attachment(part, content_type, filename):
            attachment = inspect_attachment(filename, content_type, payload, limits.attachments)
            body.attachments.append(attachment)
            if attachment.text:
                _add_urls(body, find_in_text(attachment.text, f"attachment:{filename}", limits.max_urls),
                          limits, defects)
            continue
        if body.text_chars >= limits.max_text_chars:
            defects.append(Defect("text_truncated", f"body text over {limits.max_text_chars} characters"))
            continue
        text = _part_text(part, payload[: limits.max_text_chars * 4], defects)[: limits.max_text_chars]
        body.text_chars += len(text)
        if content_type == "text/html" or _looks_like_html(text):
            _read_html(body, text, limits, defects)
        else:
            if "&" in text and _ENTITY.search(text):
                text = html_lib.unescape(text)
            body.plain.append(text)
            _add_urls(body, find_in_text(text, "text", limits.max_urls), limits, defects)
    return body


# --- entry point ---------------------------------------------------------------------------------

def _strip_mbox_line(raw: bytes) -> bytes:
    if raw.startswith(b"From "):
        newline = raw.find(b"\n")
        return raw[newline + 1 :] if newline >= 0 else b""
    return raw


def _header_list(msg: EmailMessage, limits: Limits, defects: list[Defect]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for name, value in msg.raw_items():
        text = _text_of(value)
        if len(text) > limits.max_header_chars:
            defects.append(Defect("header_too_long", f"{name} over {limits.max_header_chars} characters"))
            text = text[: limits.max_header_chars]
        headers.append((name, " ".join(text.split())))
    return headers


def parse(
    raw: bytes,
    envelope: Envelope | None = None,
    *,
    authserv_id: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    """Parse raw RFC 5322 bytes into a Message; never raises on malformed input."""
    defects: list[Defect] = []
    size = len(raw)
    if size > limits.max_message_bytes:
        defects.append(Defect("message_too_large", f"{size} bytes; only the first {limits.max_message_bytes} read"))
        raw = raw[: limits.max_message_bytes]
    if b"\x00" in raw:
        defects.append(Defect("nul_bytes"))
        raw = raw.replace(b"\x00", b"")
    raw = _strip_mbox_line(raw)
    try:
        msg = message_from_bytes(raw, policy=compat32)
    except (RecursionError, ValueError, TypeError, IndexError) as exc:  # the parser is lenient; be safe
        defects.append(Defect("unparseable", f"{type(exc).__name__}: {str(exc)[:80]}"))
        msg = message_from_bytes(raw.split(b"\n\n", 1)[0], policy=compat32)
    headers = _header_list(msg, limits, defects)
    try:
        body = _read_body(msg, limits, defects)
    except RecursionError:
        defects.append(Defect("mime_too_deep", "structure too deep to read"))
        body = _Body()

    def first(name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in headers if k.lower() == lowered), None)

    def every(name: str) -> list[str]:
        lowered = name.lower()
        return [v for k, v in headers if k.lower() == lowered]

    from_all = _from_addresses(every("From"), defects)
    if not from_all:
        defects.append(Defect("missing_from"))
    elif len(every("From")) > 1:
        defects.append(Defect("multiple_from_headers"))
    return Message(
        headers=tuple(headers),
        subject=decode_words(first("Subject") or "", defects),
        message_id=(first("Message-ID") or "").strip(),
        from_=from_all[0] if from_all else None,
        from_all=from_all,
        sender=_single_address(first("Sender"), defects),
        reply_to=_addresses(every("Reply-To"), defects),
        return_path=_single_address(first("Return-Path"), defects),
        to=_addresses(every("To"), defects),
        cc=_addresses(every("Cc"), defects),
        auth=_trusted_auth(headers, authserv_id),
        received=tuple(_received_hop(v) for v in every("Received")[:50]),
        text_plain="\n".join(body.plain),
        text_html="\n".join(body.html_text),
        html=tuple(body.html),
        urls=tuple(body.urls),
        attachments=tuple(body.attachments),
        parts=tuple(body.parts),
        defects=tuple(defects),
        size=size,
        envelope=envelope,
    )
