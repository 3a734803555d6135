"""Attachments that carry code or lead to a login page: executables (also inside archives), disk
images, HTML files with login forms or script redirects, macro documents, encrypted archives whose
password is in the body, and names that lie about the type."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailwarden.attachments import Attachment
    from mailwarden.message import Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal

NAME = "attachments"
SIGNALS = (
    "attachment.executable",
    "attachment.executable_in_archive",
    "attachment.disk_image",
    "attachment.html_file",
    "attachment.html_login_form",
    "attachment.html_redirect",
    "attachment.macro_document",
    "attachment.encrypted_archive",
    "attachment.password_in_body",
    "attachment.double_extension",
    "attachment.type_mismatch",
)


def _classes(attachment: Attachment, context: Context) -> set[str]:
    found = set()
    for name, (extensions, sniffed) in context.data.attachment_classes.items():
        if attachment.extension in extensions or attachment.sniffed_type in sniffed:
            found.add(name)
    return found


def analyze(message: Message, context: Context) -> list[Signal]:
    signals: list[Signal] = []
    for attachment in message.attachments:
        classes = _classes(attachment, context)
        name = attachment.filename or "(unnamed)"
        if "executable" in classes:
            signals.append(context.signal("attachment.executable", f"executable attachment {name}",
                                          filename=name, sniffed=attachment.sniffed_type))
        if "disk_image" in classes:
            signals.append(context.signal("attachment.disk_image", f"disk image attachment {name}", filename=name))
        if "html" in classes:
            signals.append(context.signal("attachment.html_file", f"HTML file attachment {name}", filename=name))
    return signals
