"""The warn banner: at the top of the first text and HTML bodies, escaped, everything else byte for byte."""

from __future__ import annotations

import base64
import quopri
from email import message_from_bytes
from email.policy import compat32

from mailwarden.gateway.banner import insert_banner

REASON = 'Sender imitates <Globex> & "Partners"'


def message(*parts: str, top: str = 'Content-Type: multipart/mixed; boundary="XX"') -> bytes:
    head = f"From: a@b.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n{top}\r\n\r\npreamble\r\n"
    body = "".join(f"--XX\r\n{p}\r\n" for p in parts) + "--XX--\r\nepilogue\r\n"
    return (head + body).encode()


def decoded(raw: bytes, index: int) -> str:
    part = message_from_bytes(raw, policy=compat32).get_payload()[index]
    return str(part.get_payload(decode=True).decode(part.get_content_charset() or "ascii"))


def test_plain_message_gets_the_banner_at_the_top() -> None:
    raw = b"From: a@b.test\r\nSubject: s\r\n\r\nHello\r\nBye\r\n"
    out = insert_banner(raw, REASON)
    head, body = out.split(b"\r\n\r\n", 1)
    assert head == b"From: a@b.test\r\nSubject: s"
    assert body.startswith(b"-" * 72 + b"\r\nCaution: this message may not be what it seems.\r\n")
    assert REASON.encode() in body and body.endswith(b"\r\n\r\nHello\r\nBye\r\n")


def test_html_banner_is_escaped_and_goes_after_the_body_tag() -> None:
    raw = message("Content-Type: text/plain\r\n\r\nplain text",
                  'Content-Type: text/html; charset=utf-8\r\n\r\n<html><body class="x"><p>hi</p></body></html>')
    out = insert_banner(raw, REASON)
    html = decoded(out, 1)
    assert html.startswith('<html><body class="x"><div style=')
    assert "Sender imitates &lt;Globex&gt; &amp; &quot;Partners&quot;" in html and "<Globex>" not in html
    assert html.endswith("</div>\r\n<p>hi</p></body></html>")
    assert out.startswith(raw.split(b"--XX", 1)[0]) and out.endswith(b"--XX--\r\nepilogue\r\n")


def test_base64_and_quoted_printable_bodies_are_encoded_again() -> None:
    text = "Grüße aus Köln\r\n"
    html = "<p>Grüße=</p>"
    raw = message("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  + base64.b64encode(text.encode()).decode(),
                  "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                  + quopri.encodestring(html.encode()).decode())
    out = insert_banner(raw, "Imitates Société Générale")
    assert decoded(out, 0).endswith("Imitates Société Générale\r\n" + "-" * 72 + "\r\n\r\n" + text)
    assert decoded(out, 1).endswith("Imitates Société Générale</div>\r\n" + html)


def test_quoted_printable_plain_text_keeps_its_encoded_bytes() -> None:
    body = "caf=C3=A9 =\r\nsoft break\r\n"
    raw = message(f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                  f"{body}")
    out = insert_banner(raw, "Imitates Zoë")
    assert body.encode() in out
    assert decoded(out, 0).startswith("-" * 72 + "\r\nCaution") and "Imitates Zoë" in decoded(out, 0)


def test_attachments_and_attached_messages_are_untouched() -> None:
    attachment = "Content-Type: text/plain; name=a.txt\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nfile"
    inner = "Content-Type: message/rfc822\r\n\r\nFrom: x@y.test\r\nContent-Type: text/plain\r\n\r\ninner text"
    raw = message("Content-Type: text/plain\r\n\r\nbody", attachment, inner)
    out = insert_banner(raw, "reason")
    assert out.count(b"Caution:") == 1
    assert attachment.encode() in out and inner.encode() in out


def test_only_the_first_text_body_gets_a_banner() -> None:
    raw = message("Content-Type: text/plain\r\n\r\nfirst", "Content-Type: text/plain\r\n\r\nsecond")
    out = insert_banner(raw, "reason")
    assert out.count(b"Caution:") == 1 and decoded(out, 1) == "second"


def test_unknown_charsets_and_broken_structure_are_left_alone() -> None:
    raw = message("Content-Type: text/plain; charset=x-unknown-8\r\n\r\nbody")
    assert insert_banner(raw, "reason") == raw
    no_boundary = b"Content-Type: multipart/mixed\r\n\r\nwhatever\r\n"
    assert insert_banner(no_boundary, "reason") == no_boundary


def test_the_reason_loses_control_and_bidi_characters() -> None:
    out = insert_banner(b"Subject: s\r\n\r\nbody", "evil\r\nX-Injected: 1\u202e reason")
    assert b"X-Injected: 1 reason" in out and b"\xe2\x80\xae" not in out
    assert b"evil\r\n" not in out
