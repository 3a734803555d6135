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
from email.errors import HeaderParseError
from email.feedparser import BytesFeedParser
from email.header import decode_header
from email.message import Message as EmailMessage
from email.parser import BytesParser
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
    max_header_fields: int = 1000
    max_text_chars: int = 1_000_000
    max_html_bytes: int = 4 * 1024 * 1024
    max_urls: int = 500
    max_lines: int = 500_000
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
    raw: bytes = field(default=b"", repr=False, compare=False)  # as received (DKIM/ARC verify these bytes)

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

_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _text_of(value: object) -> str:
    """A header value as text (compat32 hands out a Header object when the value has 8-bit bytes)."""
    text = str(value)
    if _ESCAPED_BYTE.search(text):
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
    except (ValueError, IndexError, AssertionError, HeaderParseError):
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


# Codecs Python has that no mail charset is: slow on hostile input (punycode is quadratic) or useless.
_NOT_MAIL_CHARSETS = frozenset({"punycode", "idna", "undefined"})


def _decode_bytes(data: bytes, charset: str | None, defects: list[Defect] | None) -> str:
    name = (charset or "utf-8").lower().strip()
    if name in ("unknown-8bit", "x-unknown", ""):
        name = "utf-8"
    try:
        info = codecs.lookup(name)
        known = info._is_text_encoding and info.name not in _NOT_MAIL_CHARSETS
    except (LookupError, ValueError):  # ValueError: a name with a NUL in it
        known = False
    if not known:
        if defects is not None:
            defects.append(Defect("unknown_charset", name[:40]))
        name = "utf-8"
    try:
        return data.decode(name)
    except UnicodeError:
        if defects is not None:
            defects.append(Defect("charset_decode_error", f"text is not valid {name[:40]}"))
    try:
        return data.decode(name, errors="replace")
    except UnicodeError:  # codecs that cannot replace (utf-7 can, but be safe)
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


def make_address(display: str, email_addr: str) -> Address | None:
    """An Address from a display name and an address found outside the headers (a forwarded header block)."""
    return _address(display, email_addr, [])


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
    values = [v for k, v in headers if k.lower() == "authentication-results"]
    if authserv_id is None:
        return tuple(parse_authentication_results(v) for v in values[:1])
    wanted = authserv_id.lower()
    return tuple(ar for ar in map(parse_authentication_results, values) if ar.authserv_id == wanted)


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
    disposition = _text_of(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
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


_BAD_QUOTED_PRINTABLE = re.compile(r"=(?![0-9A-Fa-f]{2}|[ \t]*(?:\r\n|\r|\n|$))")


def _encoded_payload(part: EmailMessage) -> str | None:
    """The body of a part as it was sent. Not get_payload(): that decodes 8-bit text with whatever codec
    the part names as its charset (punycode raises, and takes quadratic time)."""
    payload = getattr(part, "_payload", None)
    return payload if isinstance(payload, str) else None


def _payload(part: EmailMessage, defects: list[Defect]) -> bytes:
    cte = _text_of(part.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte and cte not in ("7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode"):
        defects.append(Defect("unknown_transfer_encoding", cte[:40]))
    elif cte == "quoted-printable":
        encoded = _encoded_payload(part)
        if encoded is not None and _BAD_QUOTED_PRINTABLE.search(encoded):
            defects.append(Defect("bad_quoted_printable", "'=' not followed by two hex digits or a line end"))
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError) as exc:
        defects.append(Defect("undecodable_payload", str(exc)[:80]))
        return b""
    if data is None:
        raw = _encoded_payload(part)
        return raw.encode("utf-8", "surrogateescape") if raw is not None else b""
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
    document = parse_html(text, max_links=limits.max_urls + 1)
    body.html.append(document)
    body.html_text.append(document.text)
    found: list[Url] = []
    for link in document.links:
        url = normalize(link.href, link.kind, link.text)
        if url:
            found.append(url)
    found.extend(find_in_text(document.text, "text", limits.max_urls + 1))
    _add_urls(body, found, limits, defects)


_ENTITY = re.compile(r"&(?:[a-z]{2,8}|#\d{2,5}|#x[0-9a-f]{2,4});", re.IGNORECASE)
_HTML_TAGS = re.compile(r"<(?:html|body|div|table|p|br|a\s|span|td|font|img)\b", re.IGNORECASE)


def _looks_like_html(text: str) -> bool:
    """A text/plain part that is really markup (senders get the type wrong, phishers on purpose)."""
    head = text[:4096]
    return head.lstrip()[:1] == "<" and len(_HTML_TAGS.findall(head)) >= 3


def _email_defects(part: EmailMessage, defects: list[Defect]) -> None:
    """The defects the stdlib parser recorded on one part, by their class names."""
    for defect in getattr(part, "defects", []):
        defects.append(Defect(type(defect).__name__, str(defect)[:120]))


def _read_body(root: EmailMessage, limits: Limits, defects: list[Defect]) -> _Body:
    body = _Body()
    for part, depth in _walk(root, limits, defects):
        if part.is_multipart():
            _email_defects(part, defects)
            continue
        content_type = part.get_content_type().lower()
        filename = _filename(part, defects)
        payload = _payload(part, defects)
        _email_defects(part, defects)  # after decoding: base64 defects are only found then
        body.parts.append(Part(content_type, filename, len(payload), depth))
        if _is_attachment(part, content_type, filename):
            attachment = inspect_attachment(filename, content_type, payload, limits.attachments)
            body.attachments.append(attachment)
            if attachment.text:
                _add_urls(body, find_in_text(attachment.text, f"attachment:{filename}", limits.max_urls + 1),
                          limits, defects)
            continue
        if body.text_chars >= limits.max_text_chars:
            defects.append(Defect("text_truncated", f"body text over {limits.max_text_chars} characters"))
            continue
        room = limits.max_text_chars - body.text_chars
        text = _part_text(part, payload[: room * 4], defects)
        if len(text) > room or len(payload) > room * 4:
            defects.append(Defect("text_truncated", f"body text over {limits.max_text_chars} characters"))
            text = text[:room]
        body.text_chars += len(text)
        if content_type == "text/html" or _looks_like_html(text):
            _read_html(body, text, limits, defects)
        else:
            if "&" in text and _ENTITY.search(text):
                text = html_lib.unescape(text)
            body.plain.append(text)
            _add_urls(body, find_in_text(text, "text", limits.max_urls + 1), limits, defects)
    return body


# --- bounding the stdlib parser's work ----------------------------------------------------------
#
# email.feedparser checks every line against the boundary of every open multipart and reads nested
# parts with nested generators (RecursionError near 1000 levels), so its cost grows with lines x depth.
# Both are bounded on the bytes before it runs; what is left out is recorded as a defect.

_LINE_END = re.compile(rb"\r\n|\r|\n")
_NESTING_TYPE = re.compile(rb"^content-type:[\s\x1c-\x1f]*(?:multipart|message)/", re.IGNORECASE | re.MULTILINE)
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")  # feedparser's headerRE


def _cap_lines(raw: bytes, limits: Limits, defects: list[Defect]) -> bytes:
    lines = raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n")
    if lines <= limits.max_lines:
        return raw
    defects.append(Defect("message_too_large", f"{lines} lines; only the first {limits.max_lines} read"))
    for index, match in enumerate(_LINE_END.finditer(raw), start=1):
        if index == limits.max_lines:
            return raw[: match.end()]
    return raw


def _container(content_type: bytes | None, default_type: str) -> tuple[str, bytes | None]:
    """The content type of a part from its raw Content-Type value, and its delimiter line if multipart."""
    probe = EmailMessage()
    probe.set_default_type(default_type)
    if content_type is not None:
        probe["Content-Type"] = content_type.decode("ascii", "surrogateescape").lstrip(" \t").rstrip("\r\n")
    try:
        ctype = probe.get_content_type()
        boundary = probe.get_boundary() if ctype.startswith("multipart/") else None
    except (ValueError, TypeError, IndexError, LookupError):
        return "text/plain", None
    if boundary is None:
        return ctype, None
    try:
        return ctype, b"--" + boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # a boundary no line can match
        return ctype, b""


def _needs_bounding(raw: bytes, limits: Limits) -> bool:
    """Whether the message may hold more parts or deeper nesting than the limits (cheap, may say yes wrongly).

    Parts of a multipart/digest are messages without saying so, hence half the depth in declarations.
    """
    if raw.count(b"\n--") + raw.count(b"\r--") > limits.max_parts:
        return True
    if raw.count(b":") > limits.max_header_fields * 50:  # every header field has one
        return True
    folded = raw.count(b"\n ") + raw.count(b"\n\t") + raw.count(b"\r ") + raw.count(b"\r\t")
    if folded > limits.max_header_fields * 20:
        return True
    declarations = enumerate(_NESTING_TYPE.finditer(raw), start=1)
    return any(count > limits.max_depth // 2 for count, _ in declarations)


def _delimiter_level(line: bytes, open_: list[tuple[bytes | None, bool]]) -> tuple[int, bool] | None:
    """Which open multipart a line delimits (innermost first, as feedparser checks), and whether it closes it."""
    mark = line.rstrip(b"\r\n").rstrip(b" \t")
    for level in range(len(open_) - 1, -1, -1):
        delimiter = open_[level][0]
        if delimiter and mark in (delimiter, delimiter + b"--"):
            return level, mark != delimiter
    return None


def _bound_structure(raw: bytes, limits: Limits, defects: list[Defect]) -> bytes:
    """Drop the content of parts nested deeper than max_depth, every part after max_parts, the header
    fields of a part after max_header_fields (the stdlib's lookups are linear in them) and the folded
    lines of a field past max_header_chars."""
    if not _needs_bounding(raw, limits):
        return raw
    out: list[bytes] = []
    open_: list[tuple[bytes | None, bool]] = []  # per open container: its delimiter (None: message/*), digest?
    in_headers, skipping, dropped, parts = True, False, 0, 0
    fields, dropping_field, extra_fields, field_bytes = 0, False, 0, 0
    content_type: list[bytes] | None = None
    reading_type = False
    default_type = "text/plain"
    for line in raw.splitlines(keepends=True):
        found = _delimiter_level(line, open_) if line.startswith(b"--") and open_ else None
        if found is not None:
            level, closes = found
            is_digest = open_[level][1]
            del open_[level + 1 :]
            if closes:  # the container ends
                open_.pop()
                in_headers = False
            else:  # a new part begins
                parts += 1
                if parts > limits.max_parts:
                    defects.append(Defect("too_many_parts", f"stopped after {limits.max_parts} parts"))
                    break
                in_headers, content_type, reading_type, fields = True, None, False, 0
                default_type = "message/rfc822" if is_digest else "text/plain"
            skipping = False
            out.append(line)
            continue
        if skipping:
            dropped += 1
            continue
        if not in_headers:
            out.append(line)
            continue
        is_separator = line[:1] in (b"\r", b"\n")
        if not is_separator and _HEADER_LINE.match(line):
            if line[:1] in (b" ", b"\t"):  # a folded field goes on
                field_bytes += len(line)
                if dropping_field or field_bytes > limits.max_header_chars:
                    extra_fields += not dropping_field
                    dropping_field = True
                    continue
                if reading_type and content_type is not None:
                    content_type.append(line)
                out.append(line)
                continue
            reading_type = False
            fields, field_bytes = fields + 1, len(line)
            dropping_field = fields > limits.max_header_fields
            if dropping_field:
                extra_fields += 1
                continue
            if content_type is None and line[:13].lower() == b"content-type:":
                content_type, reading_type = [line[13:]], True
            out.append(line)
            continue
        reading_type = False
        # the header block ends: what kind of part was it?
        ctype, delimiter = _container(b"".join(content_type) if content_type is not None else None, default_type)
        nests = delimiter is not None or (ctype.startswith("message/") and ctype != "message/delivery-status")
        if is_separator:
            out.append(line)
        if nests and len(open_) >= limits.max_depth:
            skipping = True
            if not is_separator:
                dropped += 1
            continue
        if not is_separator:
            out.append(line)
        if delimiter is not None:
            open_.append((delimiter, ctype == "multipart/digest"))
            in_headers = False
        elif nests:  # an attached message: its own header block follows
            open_.append((None, False))
            content_type, reading_type, default_type, fields = None, False, "text/plain", 0
        else:
            in_headers = False
    if dropped:
        defects.append(Defect("mime_too_deep", f"{dropped} lines of parts below depth {limits.max_depth} not read"))
    if extra_fields:
        defects.append(Defect("header_too_long", f"{extra_fields} header fields over {limits.max_header_fields} "
                              f"in a part, or over {limits.max_header_chars} characters, not read in full"))
    if not dropped and not extra_fields and parts <= limits.max_parts:
        return raw
    return b"".join(out)


_FEED_BYTES = 1 << 20


def _parse_tree(raw: bytes, defects: list[Defect]) -> EmailMessage:
    """The stdlib's MIME tree (compat32: fast and lenient), fed in slices to keep memory near the input size."""
    try:
        parser = BytesFeedParser(policy=compat32)
        for start in range(0, len(raw), _FEED_BYTES):
            parser.feed(raw[start : start + _FEED_BYTES])
        return parser.close()
    except (RecursionError, ValueError, TypeError, IndexError) as exc:  # the parser is lenient; be safe
        defects.append(Defect("unparseable", f"{type(exc).__name__}: {str(exc)[:80]}"))
    try:
        return BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
    except (RecursionError, ValueError, TypeError, IndexError):
        return EmailMessage()


# --- entry point ---------------------------------------------------------------------------------

def _strip_mbox_line(raw: bytes) -> bytes:
    if raw.startswith(b"From "):
        newline = raw.find(b"\n")
        return raw[newline + 1 :] if newline >= 0 else b""
    return raw


def _header_list(msg: EmailMessage, limits: Limits, defects: list[Defect]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for index, (name, value) in enumerate(msg.raw_items()):
        if index == limits.max_header_fields:
            defects.append(Defect("header_too_long", f"header fields after the first {limits.max_header_fields} "
                                  "not read"))
            break
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
    raw = _bound_structure(_cap_lines(raw, limits, defects), limits, defects)
    msg = _parse_tree(raw, defects)
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
        raw=raw,
    )
