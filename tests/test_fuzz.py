"""Fuzzing parse and scan: mutated real messages and generated MIME trees never make an exception escape.

The budget is bounded for CI (a fixed number of examples, derandomized, no example database), so a run
takes well under a minute and fails the same way every time it fails.
"""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwarden.message import Message, parse
from mailwarden.pipeline import Context, ScanResult, scan
from mailwarden.signals import Verdict

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
SEEDS_PER_CORPUS = 15

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])

CONTEXT = Context()


def _seed_files() -> list[Path]:
    """Every n-th message of the ham and phish corpora, by sorted name, so the pick never changes."""
    picked: list[Path] = []
    for name in ("ham", "phish"):
        folder = CORPORA / name
        if not folder.is_dir():
            continue
        files = sorted(p for p in folder.iterdir() if p.is_file())
        step = max(1, len(files) // SEEDS_PER_CORPUS)
        picked.extend(files[::step][:SEEDS_PER_CORPUS])
    return picked


SEEDS = [path.read_bytes() for path in _seed_files()]


def check(raw: bytes, authserv_id: str | None = None) -> None:
    """The property: a Message comes out of any bytes, and the pipeline decides on it."""
    message = parse(raw, authserv_id=authserv_id)
    assert isinstance(message, Message)
    assert message.size == len(raw)
    result = scan(message, CONTEXT)
    assert isinstance(result, ScanResult)
    assert isinstance(result.verdict, Verdict)
    assert 0 <= result.score <= 100
    failed = [s.detail for s in result.signals if s.id == "scan.analyzer_failed"]
    assert not failed, failed


# --- (a) real messages, mutated ------------------------------------------------------------------------

TOKENS = [
    b"\r\n", b"\n", b"\r", b"\n\n", b"\x00", b"\xff\xfe", b"\xc3", b"--", b"\n--", b"=", b"=\n", b"=?",
    b"?=", b"=?utf-8?b?", b"=?x-bogus?q?", b"=?utf-7?q?+AGE-?=", b"\n ", b"\t", b":", b"<", b">", b"\"",
    b"Content-Type: multipart/mixed; boundary=\"x\"\n", b"Content-Type: message/rfc822\n",
    b"Content-Type: text/html; charset=punycode\n", b"Content-Transfer-Encoding: base64\n",
    b"Content-Transfer-Encoding: quoted-printable\n", b"Content-Transfer-Encoding: x-uuencode\n",
    b"begin 644 a.exe\n", b"\n--x\n", b"\n--x--\n", b"From: \"=?utf-8?b?w7w=?=\" <a@xn--80ak6aa92e.com>\n",
    b"Authentication-Results: mx; dmarc=fail\n", b"<a href=\"http://[::1", b"<form action=", b"<area href=",
    b"<div>" * 20, b"http://%", b"https://xn--", b"filename*=utf-8''%ff", b"name=\"", b"PK\x03\x04",
]


@st.composite
def mutated_message(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "token", "delete", "truncate", "duplicate_header"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            index = min(at, len(data) - 1)
            data[index] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "token":
            data[at:at] = draw(st.sampled_from(TOKENS)) * draw(st.integers(1, 3))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 512))]
        elif op == "truncate":
            del data[at:]
        elif op == "duplicate_header":
            end = data.find(b"\n\n")
            end = end if end > 0 else len(data)
            lines = bytes(data[:end]).split(b"\n")
            lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(lines)))
            data[:end] = b"\n".join(lines)
    return bytes(data)


@pytest.mark.skipif(not SEEDS, reason="the shared corpora are not next to the repository")
@FUZZ
@given(raw=mutated_message(), trusted=st.booleans())
def test_mutated_real_messages(raw: bytes, trusted: bool) -> None:
    check(raw, authserv_id="mx" if trusted else None)


def test_every_seed_parses_and_scans_unmutated() -> None:
    for raw in SEEDS:
        check(raw)


# --- (b) generated MIME trees ------------------------------------------------------------------------

@dataclass(frozen=True)
class Leaf:
    content_type: str
    charset: str
    encoding: str
    encode: bool  # whether the body is really in its transfer encoding
    filename: str | None
    disposition: str
    body: bytes


@dataclass(frozen=True)
class Multipart:
    subtype: str
    boundary: str
    children: tuple[Part, ...]
    preamble: bytes
    closed: bool


@dataclass(frozen=True)
class Attached:
    """A message/rfc822 part: a whole message inside the message."""

    headers: tuple[tuple[str, str], ...]
    inner: Part


Part = Leaf | Multipart | Attached

CONTENT_TYPES = ["text/plain", "text/html", "text/calendar", "application/pdf", "application/zip",
                 "application/octet-stream", "image/png", "message/delivery-status", "text/x-weird",
                 "multipart/mixed", "application/ms-tnef", "garbage", ""]
CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-16", "utf-7", "gb2312", "shift_jis",
            "x-bogus", "punycode", "idna", "zlib", "", "\"utf-8\"", "utf-8\x0b"]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "x-weird", "", "BASE64"]
HTML_BITS = ["<a href='http://a.example/x'>click</a>", "<form action='https://f.example/'>", "<div>",
             "</div>", "<script>x()</script>", "<area href='//m.example/'>", "&amp;", "&#x1F600;", "<",
             "http://t.example/?q=%zz", "<input type=password>", "<meta http-equiv=refresh content='0;url=x'>"]

boundaries = st.text(alphabet="abcxyz0123456789'()+_,-./:=? ", min_size=0, max_size=72)
header_text = st.text(max_size=40).map(lambda s: s.replace("\r", " ").replace("\n", " "))


def _bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=400),
        st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.lists(st.sampled_from(HTML_BITS), max_size=30).map(lambda bits: "".join(bits).encode()),
    )


leaves = st.builds(
    Leaf,
    content_type=st.sampled_from(CONTENT_TYPES),
    charset=st.sampled_from(CHARSETS),
    encoding=st.sampled_from(ENCODINGS),
    encode=st.booleans(),
    filename=st.none() | st.text(max_size=30),
    disposition=st.sampled_from(["", "inline", "attachment", "attachment; filename*=utf-8''%E2%82%AC.zip"]),
    body=_bodies(),
)


def _containers(children: st.SearchStrategy[Part]) -> st.SearchStrategy[Part]:
    return st.one_of(
        st.builds(Multipart, subtype=st.sampled_from(["mixed", "alternative", "related", "digest", "signed"]),
                  boundary=boundaries, children=st.lists(children, max_size=5).map(tuple),
                  preamble=st.binary(max_size=40), closed=st.booleans()),
        st.builds(Attached, headers=st.lists(st.tuples(st.sampled_from(["From", "Subject", "Reply-To", "X-A"]),
                                                       header_text), max_size=4).map(tuple),
                  inner=children),
    )


trees = st.recursive(leaves, _containers, max_leaves=25)


def _transfer_encode(body: bytes, encoding: str) -> bytes:
    if encoding.lower() == "base64":
        return base64.encodebytes(body)
    if encoding == "quoted-printable":
        return quopri.encodestring(body)
    return body


def render(part: Part, nl: bytes) -> bytes:
    if isinstance(part, Leaf):
        ctype = part.content_type.encode("utf-8", "surrogatepass")
        if part.charset:
            ctype += b"; charset=" + part.charset.encode()
        if part.filename is not None:
            ctype += b'; name="' + part.filename.encode("utf-8", "surrogatepass") + b'"'
        head = [b"Content-Type: " + ctype]
        if part.encoding:
            head.append(b"Content-Transfer-Encoding: " + part.encoding.encode())
        if part.disposition:
            head.append(b"Content-Disposition: " + part.disposition.encode())
        body = _transfer_encode(part.body, part.encoding) if part.encode else part.body
        return nl.join(head) + nl + nl + body
    if isinstance(part, Attached):
        head = [f"{name}: {value}".encode("utf-8", "surrogatepass") for name, value in part.headers]
        head.insert(0, b"Content-Type: message/rfc822")
        return nl.join(head) + nl + nl + render(part.inner, nl)
    boundary = part.boundary.encode()
    out = [b'Content-Type: multipart/' + part.subtype.encode() + b'; boundary="' + boundary + b'"', b"",
           part.preamble]
    for child in part.children:
        out += [b"--" + boundary, render(child, nl)]
    if part.closed:
        out.append(b"--" + boundary + b"--")
    return nl.join(out)


@st.composite
def generated_message(draw: st.DrawFn) -> bytes:
    nl = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    head = [
        b"From: " + draw(st.sampled_from([
            "a@example.com", "\"=?utf-8?b?w7xiZXI=?=\" <x@bücher.example>", "<>", "", "a@", "@b", "x, y",
            "=?x-bogus?q?A?= <a@b.c>", "Jane <jane@xn--80ak6aa92e.com>",
        ])).encode(),
        b"Subject: " + draw(header_text).encode("utf-8", "surrogatepass"),
        b"Reply-To: " + draw(header_text).encode("utf-8", "surrogatepass"),
        b"Received: from h (h [" + draw(st.sampled_from([b"192.0.2.1", b"IPv6:::1", b"999.1.1.1", b""])) + b"])",
        b"Authentication-Results: " + draw(header_text).encode("utf-8", "surrogatepass"),
        b"MIME-Version: 1.0",
    ]
    return nl.join(head) + nl + render(draw(trees), nl) + nl


@FUZZ
@given(raw=generated_message())
def test_generated_mime_trees(raw: bytes) -> None:
    check(raw, authserv_id="mx")
