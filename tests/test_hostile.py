"""Crafted hostile messages: each is parsed and scanned in under 2 s, in bounded memory, with defects recorded.

Every case builds its input here. Time is measured on one run and memory (tracemalloc peak, which
slows allocation down) on a second, so neither measurement disturbs the other.
"""

from __future__ import annotations

import base64
import io
import time
import tracemalloc
import zipfile

import pytest

from mailwarden.message import Message, parse
from mailwarden.pipeline import Context, scan
from mailwarden.signals import Verdict

MB = 1024 * 1024
SECONDS = 2.0

HEAD = b"From: Billing <billing@partner.example>\r\nTo: ap@acme.example\r\nSubject: Invoice\r\nMessage-ID: <1@x>\r\n"

CONTEXT = Context()
scan(parse(HEAD + b"\r\nwarm up https://example.com/\r\n"), CONTEXT)


def parse_and_scan(raw: bytes, max_mb: float = 50) -> Message:
    start = time.perf_counter()
    message = parse(raw)
    result = scan(message, CONTEXT)
    elapsed = time.perf_counter() - start
    assert isinstance(result.verdict, Verdict)
    assert elapsed < SECONDS, f"took {elapsed:.2f} s"
    tracemalloc.start()
    try:
        scan(parse(raw), CONTEXT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < max_mb * MB, f"peak {peak / MB:.0f} MB"
    return message


def kinds(message: Message) -> set[str]:
    return {d.kind for d in message.defects}


# --- size ------------------------------------------------------------------------------------------

def test_a_50_mb_body() -> None:
    line = b"Please pay the attached invoice at https://pay.partner.example/i/42 today. " * 14 + b"\r\n"
    raw = HEAD + b"\r\n" + line * (50 * MB // len(line))
    message = parse_and_scan(raw, max_mb=300)
    assert {"message_too_large", "text_truncated"} <= kinds(message)
    assert message.size == len(raw)
    assert message.subject == "Invoice"


def test_a_50_mb_body_of_empty_lines() -> None:
    message = parse_and_scan(HEAD + b"\r\n" + b"\n" * (50 * MB), max_mb=300)
    assert "message_too_large" in kinds(message)


def test_a_50_mb_base64_attachment() -> None:
    payload = base64.encodebytes(b"\x00\x01binary" * (38 * MB // 8))
    raw = (HEAD + b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
           b"--m\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
           b"--m\r\nContent-Type: application/octet-stream; name=blob.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + payload + b"--m--\r\n")
    assert len(raw) > 50 * MB
    message = parse_and_scan(raw, max_mb=300)
    assert "message_too_large" in kinds(message)
    assert message.text_plain.strip() == "see attached"


# --- structure -------------------------------------------------------------------------------------

def test_10000_parts() -> None:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d https://h%d.example/\r\n" % (i, i)
                     for i in range(10_000))
    message = parse_and_scan(HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n")
    assert "too_many_parts" in kinds(message)
    assert "part 0" in message.text_plain


def test_10000_empty_parts_with_one_line_each() -> None:
    message = parse_and_scan(HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + b"--b\r\n" * 10_000)
    assert "too_many_parts" in kinds(message)


def nested(depth: int, boundary: bytes = b"b") -> bytes:
    body = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(depth):
        marker = boundary + b"%d" % level
        body = (b'Content-Type: multipart/mixed; boundary="' + marker + b'"\r\n\r\n--' + marker + b"\r\n" + body
                + b"\r\n--" + marker + b"\r\nContent-Type: text/plain\r\n\r\nsibling %d\r\n--" % level + marker
                + b"--\r\n")
    return HEAD + body


@pytest.mark.parametrize("depth", [200, 2000])
def test_deep_multipart_nesting(depth: int) -> None:
    message = parse_and_scan(nested(depth))
    assert "mime_too_deep" in kinds(message)
    assert "innermost" not in message.text_plain
    assert f"sibling {depth - 1}" in message.text_plain  # the outermost parts are read
    assert max(part.depth for part in message.parts) <= 20


def test_deep_nesting_of_attached_messages() -> None:
    raw = HEAD + b"Content-Type: message/rfc822\r\n\r\n" * 2000 + b"From: x@y.example\r\n\r\ninnermost\r\n"
    message = parse_and_scan(raw)
    assert "mime_too_deep" in kinds(message)


def test_deep_html_nesting() -> None:
    html = b"<div>" * 250_000 + b"<a href='https://deep.example/'>x</a>"
    message = parse_and_scan(HEAD + b"Content-Type: text/html\r\n\r\n" + html)
    assert "text_truncated" in kinds(message)


# --- bad charsets and transfer encodings -----------------------------------------------------------

def test_a_bogus_charset() -> None:
    message = parse_and_scan(HEAD + b'Content-Type: text/plain; charset="x-bogus"\r\n\r\nh\xe9llo w\xc3\xb6rld\r\n')
    assert "unknown_charset" in kinds(message)
    assert "rld" in message.text_plain


def test_utf7_with_junk() -> None:
    raw = HEAD + b"Content-Type: text/plain; charset=utf-7\r\n\r\n+AGEAYQ- +ZZZZ\xff\xfe +- junk +AGE\r\n" * 1000
    message = parse_and_scan(raw)
    assert "charset_decode_error" in kinds(message)


@pytest.mark.parametrize("charset", [b"punycode", b"idna", b"utf-32", b"zlib"])
def test_charsets_that_break_or_slow_decoders(charset: bytes) -> None:
    body = b"a-" + b"\xff\x80bcdefgh" * 50_000
    raw = (HEAD + b"Subject: =?" + charset + b"?q?=FF=80?=\r\nContent-Type: text/plain; charset=" + charset
           + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n")
    message = parse_and_scan(raw)
    assert kinds(message) & {"unknown_charset", "charset_decode_error"}


def test_an_unknown_transfer_encoding() -> None:
    message = parse_and_scan(HEAD + b"Content-Transfer-Encoding: x-weird\r\n\r\nhello\r\n")
    assert "unknown_transfer_encoding" in kinds(message)


def test_broken_base64() -> None:
    raw = HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n" + b"!!!!aGVsbG8=====\xff\xfe\r\nab$c\r\n" * 20_000
    message = parse_and_scan(raw)
    assert kinds(message) & {"InvalidBase64CharactersDefect", "InvalidBase64PaddingDefect",
                             "InvalidBase64LengthDefect"}


def test_broken_quoted_printable() -> None:
    raw = HEAD + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + b"=ZZ=\r\n=4=\xff = =\r\n" * 20_000
    message = parse_and_scan(raw)
    assert "bad_quoted_printable" in kinds(message)


# --- NUL bytes and huge headers ----------------------------------------------------------------------

def test_nul_bytes_everywhere() -> None:
    clean = (HEAD + b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
             b"pay now https://pay.example/\r\n--b\r\nContent-Type: text/html\r\n\r\n<a href='https://x.example/'>"
             b"go</a>\r\n--b--\r\n") * 100
    message = parse_and_scan(b"\x00".join(bytes([c]) for c in clean))
    assert "nul_bytes" in kinds(message)
    assert message.from_ is not None and message.from_.email == "billing@partner.example"


@pytest.mark.parametrize("name", [b"Subject", b"X-Unknown-Header", b"From", b"Authentication-Results"])
def test_a_1_mb_header_line(name: bytes) -> None:
    raw = b"From: a@example.com\r\n" + name + b": " + b"A" * MB + b"\r\n\r\nbody\r\n"
    message = parse_and_scan(raw)
    assert "header_too_long" in kinds(message)
    assert message.text_plain == "body\r\n" or message.text_plain == "body\n"


def test_a_1_mb_header_of_encoded_words() -> None:
    raw = HEAD + b"X-Words: " + b"=?utf-8?b?w7w=?= " * (MB // 17) + b"\r\n\r\nbody\r\n"
    message = parse_and_scan(raw)
    assert "header_too_long" in kinds(message)


def test_a_header_folded_into_350000_lines() -> None:
    raw = HEAD + b"X-Junk: A\r\n" + b" A\r\n" * 350_000 + b"\r\nbody\r\n"
    message = parse_and_scan(raw)
    assert "header_too_long" in kinds(message)


def test_200000_header_fields() -> None:
    raw = (HEAD + b"Received: from x ([192.0.2.1]) by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n" * 100_000
           + b"Authentication-Results: mx; spf=pass smtp.mailfrom=x.example\r\n" * 100_000 + b"\r\nbody\r\n")
    message = parse_and_scan(raw)
    assert "header_too_long" in kinds(message)
    assert len(message.headers) <= 1000


# --- archives ----------------------------------------------------------------------------------------

def test_a_zip_bomb_attachment() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(3):
            with archive.open(f"zeros{index}.bin", "w", force_zip64=True) as member:
                for _ in range(200):
                    member.write(b"\x00" * MB)
    raw = (HEAD + b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\n'
           b"see attached\r\n--m\r\nContent-Type: application/zip; name=invoice.zip\r\n"
           b"Content-Disposition: attachment; filename=invoice.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(buffer.getvalue()) + b"--m--\r\n")
    message = parse_and_scan(raw, max_mb=100)
    [attachment] = message.attachments
    assert "archive_bomb" in attachment.defects
