"""Attachment signals: which files make a message suspicious, with the evidence, and which stay quiet.

Each test mails a small real file (built here or in tests/test_attachments.py) through the parser and
the analyzer, and states the signals that must and must not fire.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from test_attachments import (
    AUTO_OPEN_MACRO,
    FAKE_PE,
    LOGIN_PAGE,
    PDF,
    compound_file,
    deflated_zeros,
    make_zip,
    ooxml,
    raw_zip,
    vba_project,
)

from mailwarden.analyzers import attachments
from mailwarden.message import Message, parse
from mailwarden.pipeline import Context
from mailwarden.signals import Signal

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CONTEXT = Context()
ISO = bytes(0x8001) + b"CD001" + bytes(2048)
ENCRYPTED_ZIP = raw_zip([("invoice.pdf", b"\x8f\x13" * 40, 8, 0, 90_000, 0x1)])


def mail(*files: tuple[str, str, bytes], body: str = "Please find the documents attached.",
         subject: str = "Documents", inline: tuple[str, str, bytes] | None = None) -> Message:
    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.org>"
    message["To"] = "bob@acme-corp.com"
    message["Subject"] = subject
    message["Message-ID"] = "<1@example.org>"
    message.set_content(body)
    if inline is not None:
        message.add_alternative(f"<p>{body}</p><img src='cid:logo'>", subtype="html")
        name, content_type, data = inline
        maintype, subtype = content_type.split("/")
        message.get_payload()[1].add_related(data, maintype=maintype, subtype=subtype, cid="<logo>", filename=name)
    for name, content_type, data in files:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return parse(message.as_bytes())


def signals(message: Message) -> dict[str, Signal]:
    found = attachments.analyze(message, CONTEXT)
    assert len({s.id for s in found}) == len(found), "one signal per id and message"
    return {s.id: s for s in found}


def ids(message: Message) -> set[str]:
    return set(signals(message))


# --- executables ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "data"), [
    ("setup.exe", FAKE_PE),
    ("invoice.js", b"var shell = 1;"),
    ("update.HTA", b"<html></html>"),
    ("report.dat", FAKE_PE),  # no telling name, but the content is a program
    ("Payment.lnk", b"L\x00\x00\x00\x01\x14\x02\x00" + bytes(80)),
])
def test_an_executable_or_script_attachment(name: str, data: bytes) -> None:
    found = signals(mail((name, "application/octet-stream", data)))
    assert "attachment.executable" in found
    assert found["attachment.executable"].evidence["filename"] == name


def test_an_executable_inside_a_nested_archive() -> None:
    archive = make_zip({"docs.zip": make_zip({"scan.scr": FAKE_PE})})
    found = signals(mail(("documents.zip", "application/zip", archive)))
    assert set(found) == {"attachment.executable_in_archive"}
    assert found["attachment.executable_in_archive"].evidence["member"] == "docs.zip/scan.scr"


def test_a_program_renamed_inside_an_archive_is_found_by_its_content() -> None:
    found = ids(mail(("photos.zip", "application/zip", make_zip({"photo.jpg": FAKE_PE}))))
    assert "attachment.executable_in_archive" in found


def test_a_shortcut_to_a_file_share_runs_code() -> None:
    shortcut = b"[InternetShortcut]\r\nURL=file://198.51.100.7/share/invoice.exe\r\n"
    assert ids(mail(("invoice.url", "application/octet-stream", shortcut))) == {"attachment.executable"}


def test_several_executables_are_one_finding() -> None:
    found = attachments.analyze(mail(("a.exe", "application/octet-stream", FAKE_PE),
                                     ("b.exe", "application/octet-stream", FAKE_PE)), CONTEXT)
    assert [s.id for s in found] == ["attachment.executable"]


# --- disk images ---------------------------------------------------------------------------------

def test_a_disk_image_attachment() -> None:
    assert ids(mail(("Order.iso", "application/octet-stream", ISO))) == {"attachment.disk_image"}


def test_a_disk_image_inside_an_archive() -> None:
    found = signals(mail(("Order.zip", "application/zip", make_zip({"Order.img": ISO}))))
    assert "attachment.disk_image" in found
    assert found["attachment.disk_image"].evidence["member"] == "Order.img"


# --- HTML ----------------------------------------------------------------------------------------

def test_an_html_attachment_with_a_login_form() -> None:
    found = signals(mail(("Remittance_Advice.html", "text/html", LOGIN_PAGE)))
    assert set(found) == {"attachment.html_file", "attachment.html_login_form"}
    assert found["attachment.html_login_form"].evidence["indicators"] == ["form_post_external", "password_form"]


def test_an_html_attachment_that_redirects() -> None:
    page = b'<html><script>window.location.href = "https://evil.example/doc"</script></html>'
    assert ids(mail(("Voicemail.htm", "text/html", page))) == {"attachment.html_file", "attachment.html_redirect"}


def test_an_html_attachment_that_assembles_a_file() -> None:
    blob = base64.b64encode(FAKE_PE * 20).decode()
    page = f'<script>var b = new Blob([atob("{blob}")]); navigator.msSaveOrOpenBlob(b, "a.exe");</script>'
    assert "attachment.html_redirect" in ids(mail(("Invoice.html", "text/html", page.encode())))


def test_a_plain_html_attachment_is_only_noted() -> None:
    page = b"<html><body><p>Minutes of the meeting</p></body></html>"
    found = signals(mail(("minutes.html", "text/html", page)))
    assert set(found) == {"attachment.html_file"}
    assert found["attachment.html_file"].score < CONTEXT.scoring.thresholds.warn


# --- macros --------------------------------------------------------------------------------------

def test_a_macro_document_that_runs_on_opening_scores_fully() -> None:
    docm = ooxml({"word/vbaProject.bin": compound_file(vba_project(AUTO_OPEN_MACRO))})
    found = signals(mail(("Order.docm", "application/vnd.ms-word.document.macroEnabled.12", docm)))
    assert set(found) == {"attachment.macro_document"}
    signal = found["attachment.macro_document"]
    assert signal.score == CONTEXT.scoring.weights["attachment.macro_document"]
    assert "AutoExec:AutoOpen" in signal.evidence["indicators"]


def test_a_macro_document_without_auto_run_scores_less() -> None:
    document = compound_file(vba_project("Sub Format()\r\nEnd Sub\r\n", root="Macros") | {"WordDocument": bytes(5000)})
    found = signals(mail(("Template.doc", "application/msword", document)))
    assert 0 < found["attachment.macro_document"].score < CONTEXT.scoring.weights["attachment.macro_document"]


def test_a_macro_document_in_an_archive() -> None:
    docm = ooxml({"word/vbaProject.bin": b"VBA"})
    found = signals(mail(("Order.zip", "application/zip", make_zip({"Order.docm": docm}))))
    assert found["attachment.macro_document"].evidence["member"] == "Order.docm"


# --- encryption and passwords in the body --------------------------------------------------------

@pytest.mark.parametrize("body", [
    "The invoice is attached. Password: 4471",
    "Das Passwort lautet: Rechnung2024",
    "Le mot de passe est 8812",
    "Contraseña: 5521",
    "A senha do arquivo é 7731",
    "pwd=abc123",
    "Wachtwoord: 9081",
])
def test_an_encrypted_archive_with_its_password_in_the_body(body: str) -> None:
    found = signals(mail(("invoice.zip", "application/zip", ENCRYPTED_ZIP), body=body))
    assert set(found) == {"attachment.encrypted_archive", "attachment.password_in_body"}
    assert found["attachment.password_in_body"].evidence["filename"] == "invoice.zip"


@pytest.mark.parametrize("body", [
    "Please find the archive attached.",
    "A password is required to open it; I will call you with it.",
    "Your password will expire soon.",
])
def test_an_encrypted_archive_without_a_password_in_the_body(body: str) -> None:
    assert ids(mail(("invoice.zip", "application/zip", ENCRYPTED_ZIP), body=body)) == {"attachment.encrypted_archive"}


def test_a_password_next_to_an_unencrypted_archive_is_not_a_signal() -> None:
    plain = make_zip({"invoice.pdf": PDF})
    assert ids(mail(("invoice.zip", "application/zip", plain), body="Password: 4471")) == set()


def test_an_encrypted_office_document_with_its_password_in_the_body() -> None:
    document = compound_file({"EncryptionInfo": b"\x04\x00\x04\x00" + bytes(200), "EncryptedPackage": bytes(5000)})
    found = ids(mail(("Invoice.docx", "application/octet-stream", document), body="Password: 2024"))
    assert found == {"attachment.password_in_body"}


# --- names that lie ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["invoice.pdf.exe", "scan.doc      .js", "Statement.PDF.html",
                                  "photo\u202egpj.exe"])
def test_a_name_that_disguises_its_type(name: str) -> None:
    found = signals(mail((name, "application/octet-stream", b"data")))
    assert "attachment.double_extension" in found


def test_a_member_name_that_disguises_its_type() -> None:
    found = signals(mail(("Invoice.zip", "application/zip", make_zip({"Invoice.pdf.exe": FAKE_PE}))))
    assert found["attachment.double_extension"].evidence["member"] == "Invoice.pdf.exe"


@pytest.mark.parametrize("name", ["report.v2.final.pdf", "backup.tar.gz", "Q3.results.xlsx", "invoice.pdf.zip",
                                  "Mr. Smith.docx"])
def test_ordinary_dots_in_names_are_fine(name: str) -> None:
    assert "attachment.double_extension" not in ids(mail((name, "application/octet-stream", b"data")))


@pytest.mark.parametrize(("name", "content_type", "data"), [
    ("invoice.pdf", "application/pdf", b"<html><body><form action='https://x.example/'></form></body></html>"),
    ("photo.jpg", "image/jpeg", make_zip({"a.txt": b"a"})),
    ("Q3 figures", "application/pdf", FAKE_PE),
])
def test_a_file_that_is_not_what_it_claims(name: str, content_type: str, data: bytes) -> None:
    found = signals(mail((name, content_type, data)))
    assert "attachment.type_mismatch" in found


# --- PDFs and archives that cannot be inspected --------------------------------------------------

def test_a_pdf_that_launches_a_program() -> None:
    pdf = b"%PDF-1.4\n1 0 obj << /OpenAction << /S /Launch /F (cmd.exe) >> >> endobj\n%%EOF"
    assert ids(mail(("statement.pdf", "application/pdf", pdf))) == {"attachment.pdf_active_content"}


def test_a_zip_bomb_is_reported_as_unscannable() -> None:
    stream, crc = deflated_zeros(200)
    bomb = raw_zip([("zeros.bin", stream, 8, crc, 200 * 1024 * 1024, 0)])
    found = signals(mail(("data.zip", "application/zip", bomb)))
    assert set(found) == {"attachment.unscannable"}
    assert found["attachment.unscannable"].evidence["defects"] == ["archive_bomb"]


# --- what must stay quiet ------------------------------------------------------------------------

VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Alice Example\r\nURL:https://example.org/\r\nEND:VCARD\r\n"
INVITE = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Review\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"


@pytest.mark.parametrize("files", [
    [("invoice.pdf", "application/pdf", PDF)],
    [("invite.ics", "text/calendar", INVITE)],
    [("Alice Example.vcf", "text/vcard", VCARD)],
    [("plan.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
      ooxml({"word/media/image1.png": b"\x89PNG" + bytes(20)}))],
    [("notes.txt", "text/plain", b"Agenda: 1. budget 2. hiring")],
    [("page-source.txt", "text/plain", b"<html><body><form><input type=password></form></body></html>")],
    [("Proposal.pages", "application/octet-stream", make_zip({"Index/Document.iwa": b"\x00" * 40}))],
    [("link.url", "application/octet-stream", b"[InternetShortcut]\r\nURL=https://example.org/\r\n")],
    [("smime.p7s", "application/pkcs7-signature", b"\x30\x82\x05\x00" + bytes(60))],
    [("photos.zip", "application/zip", make_zip({"a.jpg": b"\xff\xd8\xff\xe0" + bytes(40), "notes.txt": b"hi"}))],
])
def test_benign_attachments_stay_quiet(files: list[tuple[str, str, bytes]]) -> None:
    assert ids(mail(*files, body="Password: 1234 (the door code)")) == set()


def test_an_inline_image_stays_quiet() -> None:
    assert ids(mail(inline=("logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(40)))) == set()


# --- the analyzer as a whole ---------------------------------------------------------------------

def test_every_declared_signal_has_a_weight() -> None:
    assert all(signal_id in CONTEXT.scoring.weights for signal_id in attachments.SIGNALS)
    assert all(signal_id.startswith("attachment.") for signal_id in attachments.SIGNALS)


def scenario(name: str) -> Path:
    path = SHARED / "scenarios" / "messages" / name
    if not path.exists():
        pytest.skip(f"shared evaluation data not found at {SHARED}")
    return path


def test_scenario_archive_with_a_disguised_program() -> None:
    found = ids(parse(scenario("msg-010.eml").read_bytes()))
    assert {"attachment.executable_in_archive", "attachment.double_extension"} <= found


def test_scenario_html_attachment_with_a_fake_login() -> None:
    found = signals(parse(scenario("msg-021.eml").read_bytes()))
    assert "attachment.html_login_form" in found
    assert found["attachment.html_login_form"].evidence["filename"] == "Remittance_Advice_HGE-20260423.html"


def test_scenario_benign_messages_raise_no_attachment_signal() -> None:
    labels = json.loads((scenario("msg-029.eml").parent.parent / "labels.json").read_text())
    for name, label in labels.items():
        if label["label"] == "benign":
            assert ids(parse(scenario(name).read_bytes())) == set(), name


def test_modern_legitimate_mail_raises_no_attachment_signal() -> None:
    folder = SHARED / "corpora" / "modern-ham" / "messages"
    if not folder.exists():
        pytest.skip(f"shared evaluation data not found at {SHARED}")
    noisy = {path.name: sorted(ids(parse(path.read_bytes()))) for path in sorted(folder.glob("*.eml"))}
    assert {name: found for name, found in noisy.items() if found} == {}


def test_attachment_signals_only_come_from_this_analyzer_list() -> None:
    message = mail(("invoice.pdf.exe", "application/octet-stream", FAKE_PE),
                   ("invoice.zip", "application/zip", ENCRYPTED_ZIP), body="Password: 4471")
    emitted = [s.id for s in attachments.analyze(message, CONTEXT)]
    assert set(emitted) <= set(attachments.SIGNALS)
    assert replace(message, attachments=()).attachments == ()
    assert attachments.analyze(replace(message, attachments=()), CONTEXT) == []
