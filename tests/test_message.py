"""message.parse: raw bytes to an immutable, typed view, with what was wrong recorded as defects."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailwarden.message import Envelope, Limits, Message, decode_words, parse
from mailwarden.sources import read_messages


def kinds(message: Message) -> set[str]:
    return {d.kind for d in message.defects}


# --- addresses -------------------------------------------------------------------------------------

def test_display_names_in_rfc2047_encoded_words_are_decoded() -> None:
    message = parse(
        b"From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <joerg@example.com>\n"
        b"To: =?utf-8?q?Zo=C3=AB_Smith?= <zoe@example.org>\n"
        b"Cc: =?iso-8859-1?Q?Fran=E7ois_P=E9rez?= <fp@example.net>\n"
        b"Subject: =?utf-8?q?R=C3=A9sum=C3=A9?= attached\n"
        b"\n"
        b"hi\n"
    )
    assert message.from_ is not None
    assert message.from_.display_name == "Jörg Müller"
    assert message.from_.email == "joerg@example.com"
    assert [a.display_name for a in message.to] == ["Zoë Smith"]
    assert [a.display_name for a in message.cc] == ["François Pérez"]
    assert message.subject == "Résumé attached"
    assert message.defects == ()


def test_decode_words_survives_an_unknown_charset() -> None:
    defects: list = []
    assert decode_words("=?x-klingon?q?abc?= tail", defects) == "abc tail"
    assert [d.kind for d in defects] == ["unknown_charset"]


def test_unicode_from_domain_is_given_in_punycode_and_unicode() -> None:
    message = parse("From: Büro <info@bücher.example>\n\nhi\n".encode())
    assert message.from_ is not None
    assert message.from_.domain == "xn--bcher-kva.example"
    assert message.from_.domain_unicode == "bücher.example"
    assert message.from_.email == "info@xn--bcher-kva.example"


def test_punycode_from_domain_is_also_given_in_unicode() -> None:
    message = parse(b"From: info@XN--Bcher-kva.Example\n\nhi\n")
    assert message.from_ is not None
    assert message.from_.domain == "xn--bcher-kva.example"
    assert message.from_.domain_unicode == "bücher.example"


def test_registrable_domain_of_an_address() -> None:
    message = parse(b"From: billing@mail.globex.co.uk\n\nhi\n")
    assert message.from_ is not None
    assert message.from_.registrable_domain == "globex.co.uk"


def test_two_from_headers_are_both_kept_and_recorded_as_a_defect() -> None:
    message = parse(b"From: ceo@acme.example\nFrom: attacker@evil.example\n\nhi\n")
    assert [a.email for a in message.from_all] == ["ceo@acme.example", "attacker@evil.example"]
    assert message.from_ is not None and message.from_.email == "ceo@acme.example"
    assert "multiple_from_headers" in kinds(message)


def test_one_from_header_with_two_addresses() -> None:
    message = parse(b'From: "A" <a@one.example>, "B" <b@two.example>\n\nhi\n')
    assert [a.email for a in message.from_all] == ["a@one.example", "b@two.example"]


def test_reply_to_list_sender_and_return_path() -> None:
    message = parse(
        b"From: Jane <jane@acme.example>\n"
        b"Sender: list-bounces@lists.example\n"
        b"Reply-To: billing@acme.example, \"Payments\" <pay@freemail.example>\n"
        b"Return-Path: <bounce+123@mailer.example.net>\n"
        b"\n"
        b"hi\n"
    )
    assert [(a.display_name, a.email) for a in message.reply_to] == [
        ("", "billing@acme.example"), ("Payments", "pay@freemail.example")]
    assert message.sender is not None and message.sender.email == "list-bounces@lists.example"
    assert message.return_path is not None
    assert message.return_path.email == "bounce+123@mailer.example.net"
    assert message.return_path.registrable_domain == "example.net"


def test_empty_return_path_is_no_address() -> None:
    message = parse(b"From: a@example.com\nReturn-Path: <>\n\nhi\n")
    assert message.return_path is None


def test_missing_from_is_a_defect() -> None:
    message = parse(b"To: someone@example.com\nSubject: no sender\n\nhi\n")
    assert message.from_ is None
    assert message.from_all == ()
    assert "missing_from" in kinds(message)


def test_header_lookup_is_case_insensitive_and_unfolded() -> None:
    message = parse(b"From: a@example.com\nX-Note: one\n  two\nx-note: three\n\nhi\n")
    assert message.header("x-NOTE") == "one two"
    assert message.header_all("X-Note") == ["one two", "three"]
    assert message.header("X-Absent") is None


def test_message_is_immutable_and_keeps_the_envelope() -> None:
    envelope = Envelope(client_ip="192.0.2.7", helo="mail.example.com", mail_from="a@example.com",
                        rcpt_to=("b@acme.example",))
    message = parse(b"From: a@example.com\nMessage-ID: <1@example.com>\n\nhi\n", envelope)
    assert message.envelope == envelope
    assert message.message_id == "<1@example.com>"
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.subject = "changed"  # type: ignore[misc]


# --- Authentication-Results ------------------------------------------------------------------------

AUTH_HEADERS = (
    b"Authentication-Results: mx1.acme.example; spf=pass smtp.mailfrom=partner.example;\n"
    b" dkim=pass header.d=partner.example header.s=sel1; dmarc=pass header.from=partner.example;\n"
    b" arc=none\n"
    b"Authentication-Results: mx.evil.example; spf=pass smtp.mailfrom=bank.example;\n"
    b" dkim=pass header.d=bank.example; dmarc=pass header.from=bank.example\n"
)


def test_only_results_from_our_authserv_id_are_trusted() -> None:
    message = parse(AUTH_HEADERS + b"From: a@partner.example\n\nhi\n", authserv_id="MX1.acme.example")
    assert [ar.authserv_id for ar in message.auth] == ["mx1.acme.example"]
    assert message.auth_method("spf") == ["pass"]
    assert message.auth_method("arc") == ["none"]
    dkim = message.auth[0].first("dkim")
    assert dkim is not None and dkim.domain == "partner.example" and dkim.prop("header.s") == "sel1"
    assert [r.domain for r in message.auth[0].method("dmarc")] == ["partner.example"]


def test_a_forged_header_with_another_authserv_id_is_ignored() -> None:
    forged_first = (
        b"Authentication-Results: mx1.acme.example.evil.example; dmarc=pass header.from=bank.example\n"
        b"Authentication-Results: mx1.acme.example; dmarc=fail header.from=bank.example\n"
        b"From: a@bank.example\n\nhi\n"
    )
    message = parse(forged_first, authserv_id="mx1.acme.example")
    assert message.auth_method("dmarc") == ["fail"]


def test_no_trusted_results_when_none_carries_our_authserv_id() -> None:
    message = parse(AUTH_HEADERS + b"From: a@partner.example\n\nhi\n", authserv_id="mx2.acme.example")
    assert message.auth == ()
    assert message.auth_method("dmarc") == []


def test_without_an_authserv_id_only_the_topmost_header_is_used() -> None:
    message = parse(AUTH_HEADERS + b"From: a@partner.example\n\nhi\n")
    assert [ar.authserv_id for ar in message.auth] == ["mx1.acme.example"]
    assert message.auth_method("dkim") == ["pass"]
    assert [r.domain for r in message.auth[0].method("dkim")] == ["partner.example"]


# --- Received chain --------------------------------------------------------------------------------

def test_received_chain_with_ipv4_and_ipv6_addresses() -> None:
    message = parse(
        b"Received: from mail.partner.example (mail.partner.example [192.0.2.10])\n"
        b" by mx1.acme.example (Postfix) with ESMTPS id 4AB; Mon, 1 Jan 2024 10:00:00 +0000\n"
        b"Received: from laptop (unknown [IPv6:2001:db8::25])\n"
        b" by mail.partner.example with ESMTPSA; Mon, 1 Jan 2024 09:59:58 +0000\n"
        b"Received: from localhost by laptop; Mon, 1 Jan 2024 09:59:57 +0000\n"
        b"From: a@partner.example\n\nhi\n"
    )
    assert [hop.ip for hop in message.received] == ["192.0.2.10", "2001:db8::25", None]
    assert [hop.by_host for hop in message.received] == ["mx1.acme.example", "mail.partner.example", "laptop"]
    assert message.received[0].from_text.startswith("mail.partner.example")


# --- bodies ----------------------------------------------------------------------------------------

ALTERNATIVE = (
    b"From: a@example.com\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/alternative; boundary="alt"\n'
    b"\n"
    b"--alt\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"Gr=C3=BC=C3=9Fe, the invoice is ready.\n"
    b"--alt\n"
    b"Content-Type: text/html; charset=utf-8\n"
    b"\n"
    b"<html><head><title>t</title><style>p { color: red }</style></head>\n"
    b"<body><script>document.write('evil')</script><p>Gr&uuml;&szlig;e, the <b>invoice</b> is ready.</p>\n"
    b"</body></html>\n"
    b"--alt--\n"
)


def test_plain_text_and_html_rendered_to_text_without_scripts_or_styles() -> None:
    message = parse(ALTERNATIVE)
    assert message.text_plain.strip() == "Grüße, the invoice is ready."
    assert message.text_html == "Grüße, the invoice is ready."
    assert "evil" not in message.text_html and "color" not in message.text_html
    assert message.html[0].scripts == ("document.write('evil')",)
    assert [p.content_type for p in message.parts] == ["text/plain", "text/html"]
    assert [p.depth for p in message.parts] == [1, 1]
    assert message.attachments == ()
    assert message.defects == ()


def test_text_is_what_a_reader_sees() -> None:
    html_only = parse(b"From: a@example.com\nContent-Type: text/html\n\n<p>Only <i>HTML</i></p>\n")
    assert html_only.text_plain == ""
    assert html_only.text == "Only HTML"
    plain_only = parse(b"From: a@example.com\n\nJust text.\n")
    assert plain_only.text == "Just text.\n"


def test_url_origins_text_href_with_anchor_text_form_and_area() -> None:
    message = parse(
        b"From: a@example.com\n"
        b'Content-Type: multipart/alternative; boundary="b"\n'
        b"\n"
        b"--b\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"Pay at https://pay.example.com/invoice/42.\n"
        b"--b\n"
        b"Content-Type: text/html\n"
        b"\n"
        b'<a href="https://login.evil.example/o365">https://portal.office.com</a>\n'
        b'<form action="https://collect.evil.example/post"><input type="password" name="p"></form>\n'
        b'<map name="m"><area href="https://map.evil.example/a" alt="Open document"></map>\n'
        b"--b--\n"
    )
    origins = [(u.origin, u.host, u.anchor_text) for u in message.urls]
    assert ("text", "pay.example.com", "") in origins
    assert ("href", "login.evil.example", "https://portal.office.com") in origins
    assert ("form", "collect.evil.example", "") in origins
    assert ("area", "map.evil.example", "Open document") in origins
    assert message.html[0].has_password_input
    # a URL written out as link text is also a URL the reader sees in the text
    assert [u.url for u in message.urls if u.origin == "text"] == [
        "https://pay.example.com/invoice/42", "https://portal.office.com/"]


def test_urls_are_percent_decoded_and_get_their_registrable_domain() -> None:
    message = parse(
        b"From: a@example.com\n\n"
        b"http://www.%65xample.co.uk/%7Eaccounts/pay%20now\n"
        b"https://invoice-7f3a.blob.core.windows.net/docs/index.html\n"
        b"https://B%C3%BCcher.example/\n"
    )
    first, blob, idn = message.urls
    assert first.host == "www.example.co.uk"
    assert first.registrable_domain == "example.co.uk"
    assert first.path == "/~accounts/pay now"
    assert blob.registrable_domain == "invoice-7f3a.blob.core.windows.net"  # a private suffix: its own site
    assert idn.host == "xn--bcher-kva.example" and idn.host_unicode == "bücher.example"


def test_attachment_is_kept_apart_from_the_body_text() -> None:
    message = parse(
        b"From: a@example.com\n"
        b'Content-Type: multipart/mixed; boundary="m"\n'
        b"\n"
        b"--m\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"See attached.\n"
        b"--m\n"
        b'Content-Type: application/pdf; name="invoice.pdf"\n'
        b'Content-Disposition: attachment; filename="=?utf-8?q?Rechnung_M=C3=A4rz.pdf?="\n'
        b"Content-Transfer-Encoding: base64\n"
        b"\n"
        b"JVBERi0xLjQKJcfsj6IK\n"
        b"--m--\n"
    )
    assert message.text_plain.strip() == "See attached."
    [attachment] = message.attachments
    assert attachment.filename == "Rechnung März.pdf"
    assert attachment.sniffed_type == "pdf"
    assert attachment.size == len(b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n")


# --- defects and limits ----------------------------------------------------------------------------

def test_bad_base64_is_recorded_and_what_can_be_read_is_kept() -> None:
    message = parse(
        b"From: a@example.com\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
        b"aGVsbG8gd29ybGQ!!*\n"
    )
    assert "InvalidBase64CharactersDefect" in kinds(message)
    assert message.text_plain.startswith("hello world")


def test_bad_quoted_printable_is_recorded() -> None:
    message = parse(
        b"From: a@example.com\nContent-Transfer-Encoding: quoted-printable\n\n100=ZZ off =3D today\n"
    )
    assert "bad_quoted_printable" in kinds(message)
    assert "off = today" in message.text_plain


def test_unknown_charset_is_recorded_and_read_as_utf8() -> None:
    message = parse(
        b'From: a@example.com\nContent-Type: text/plain; charset="x-bogus"\n\nna\xc3\xafve caf\xc3\xa9\n'
    )
    assert "unknown_charset" in kinds(message)
    assert message.text_plain == "naïve café\n"


@pytest.mark.parametrize("charset", [b"punycode", b"idna", b"undefined", b"zlib", b"rot13", b"base64"])
def test_codecs_that_are_no_mail_charset_are_unknown(charset: bytes) -> None:
    message = parse(b"From: a@example.com\nContent-Type: text/plain; charset=" + charset + b"\n\n\xff\x80 hi\n")
    assert "unknown_charset" in kinds(message)
    assert message.text_plain.endswith(" hi\n")


def test_text_that_is_not_in_its_charset_is_recorded() -> None:
    message = parse(b"From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\ncaf\xe9 \xff\n")
    assert "charset_decode_error" in kinds(message)
    assert message.text_plain == "caf\ufffd \ufffd\n"


def test_unknown_transfer_encoding_is_recorded() -> None:
    message = parse(b"From: a@example.com\nContent-Transfer-Encoding: x-weird\n\nhello\n")
    assert "unknown_transfer_encoding" in kinds(message)
    assert message.text_plain == "hello\n"


def test_nul_bytes_are_removed_and_recorded() -> None:
    message = parse(b"From: a@exam\x00ple.com\nSubject: in\x00voice\n\nhel\x00lo\n")
    assert "nul_bytes" in kinds(message)
    assert message.subject == "invoice"
    assert message.from_ is not None and message.from_.domain == "example.com"


def _mixed(parts: int) -> bytes:
    body = b"".join(b"--b\nContent-Type: text/plain\n\npart %d\n" % i for i in range(parts))
    return b'From: a@example.com\nContent-Type: multipart/mixed; boundary="b"\n\n' + body + b"--b--\n"


def _nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain\n\ninnermost\n"
    for level in range(depth):
        body = (b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (level, level) + body
                + b"\n--b%d\n" % level + b"Content-Type: text/plain\n\nsibling %d\n--b%d--\n" % (level, level))
    return b"From: a@example.com\n" + body


def test_parts_over_max_parts_are_not_read() -> None:
    message = parse(_mixed(10), limits=Limits(max_parts=5))
    assert "too_many_parts" in kinds(message)
    assert len(message.parts) < 5
    assert "part 0" in message.text_plain and "part 9" not in message.text_plain


def test_parts_deeper_than_max_depth_are_not_read_but_their_siblings_are() -> None:
    message = parse(_nested(8), limits=Limits(max_depth=4))
    assert "mime_too_deep" in kinds(message)
    assert "innermost" not in message.text_plain
    # level 7 is the outermost container, level 0 the deepest
    assert "sibling 7" in message.text_plain and "sibling 4" in message.text_plain
    assert "sibling 0" not in message.text_plain
    assert max(p.depth for p in message.parts) <= 4


def test_nesting_within_max_depth_is_read_whole() -> None:
    message = parse(_nested(8))
    assert "mime_too_deep" not in kinds(message)
    assert "innermost" in message.text_plain and "sibling 7" in message.text_plain


def test_urls_over_max_urls_are_dropped() -> None:
    body = b"".join(b"https://host%d.example/\n" % i for i in range(20))
    message = parse(b"From: a@example.com\n\n" + body, limits=Limits(max_urls=7))
    assert len(message.urls) == 7
    assert [d.kind for d in message.defects].count("too_many_urls") == 1


def test_message_over_max_message_bytes_is_read_up_to_the_limit() -> None:
    raw = b"From: a@example.com\nSubject: big\n\n" + b"x" * 5000
    message = parse(raw, limits=Limits(max_message_bytes=1000))
    assert "message_too_large" in kinds(message)
    assert message.size == len(raw)
    assert message.subject == "big"
    assert len(message.text_plain) < 1000


def test_body_text_over_max_text_chars_is_truncated() -> None:
    message = parse(b"From: a@example.com\n\n" + b"word " * 1000, limits=Limits(max_text_chars=100))
    assert "text_truncated" in kinds(message)
    assert len(message.text_plain) == 100


def test_lines_over_max_lines_are_not_read() -> None:
    message = parse(b"From: a@example.com\n\n" + b"line\n" * 100, limits=Limits(max_lines=10))
    assert "message_too_large" in kinds(message)
    assert message.text_plain.count("line") < 10


def test_header_fields_over_max_header_fields_are_not_read() -> None:
    raw = b"From: a@example.com\n" + b"X-Filler: x\n" * 50 + b"Subject: late\n\nhi\n"
    message = parse(raw, limits=Limits(max_header_fields=20))
    assert "header_too_long" in kinds(message)
    assert len(message.headers) == 20


def test_a_header_over_max_header_chars_is_truncated() -> None:
    message = parse(b"From: a@example.com\nSubject: " + b"A" * 500 + b"\n\nhi\n", limits=Limits(max_header_chars=100))
    assert "header_too_long" in kinds(message)
    assert len(message.subject) == 100


def test_an_empty_message_parses() -> None:
    message = parse(b"")
    assert message.from_ is None and message.text == "" and "missing_from" in kinds(message)


# --- where messages come from (sources.read_messages) ----------------------------------------------

def test_a_single_message_starting_with_a_from_line_is_named_by_its_file(tmp_path: Path) -> None:
    path = tmp_path / "one.eml"
    path.write_bytes(b"From alice@example.com Mon Jan  1 00:00:00 2024\nFrom: alice@example.com\nSubject: one\n\nhi\n")
    [item] = read_messages(path)
    assert item.name == str(path)
    assert item.raw is not None
    message = parse(item.raw)
    assert message.subject == "one"
    assert message.from_ is not None and message.from_.email == "alice@example.com"


def test_an_mbox_yields_each_message_and_unquotes_from_lines(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(
        b"From a@example.com Mon Jan  1 00:00:00 2024\nFrom: a@example.com\nSubject: one\n\n"
        b"body one\n>From the start\n>>From kept once\n\n"
        b"From b@example.com Tue Jan  2 00:00:00 2024\nFrom: b@example.com\nSubject: two\n\nbody two\n\n"
        b"From c@example.com Wed Jan  3 00:00:00 2024\nFrom: c@example.com\nSubject: three\n\nbody three\n"
    )
    items = list(read_messages(path))
    assert [item.name for item in items] == [f"{path}:1", f"{path}:2", f"{path}:3"]
    messages = [parse(item.raw or b"") for item in items]
    assert [m.subject for m in messages] == ["one", "two", "three"]
    assert "\nFrom the start\n>From kept once\n" in messages[0].text_plain
    assert "From b@example.com" not in messages[0].text_plain


def test_a_file_that_is_not_an_mbox_is_one_message(tmp_path: Path) -> None:
    path = tmp_path / "plain.eml"
    path.write_bytes(b"From: a@example.com\nSubject: s\n\nFrom here on, text.\n")
    [item] = read_messages(path)
    assert item.name == str(path) and item.raw == path.read_bytes()


def test_an_unreadable_file_becomes_an_error_entry(tmp_path: Path) -> None:
    [item] = read_messages(tmp_path / "missing.eml")
    assert item.raw is None and item.error is not None and "cannot read" in item.error
