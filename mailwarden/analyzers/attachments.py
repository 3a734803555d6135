"""Attachments that carry code or lead to a login page: executables (also inside archives), disk
images, HTML files with login forms or script redirects, macro documents, encrypted archives whose
password is in the body, names that lie about the type, PDFs that act on opening, and archives that
could not be inspected within the limits.

The file-type classes and password hint words are data (``mailwarden/data/attachments.toml``); what a
file really is comes from ``mailwarden.attachments.inspect_attachment`` (magic bytes, members, macros).
Nothing is opened here beyond what the inspection recorded.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import islice
from typing import TYPE_CHECKING

from mailwarden.detection import fold

if TYPE_CHECKING:
    from mailwarden.attachments import ArchiveMember, Attachment
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
    "attachment.pdf_active_content",
    "attachment.unscannable",
)

# Unicode controls that reorder how a name is displayed ("invoice\u202egpj.exe" shows "invoiceexe.jpg")
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_PADDING = re.compile(r"(?:\s+|_{3,})\.[^.]*$")  # "scan.doc      .js", "invoice___.exe"
_ARCHIVE_DEFECTS = ("archive_bomb", "archive_too_many_members", "archive_too_large", "archive_nested_too_deep",
                    "archive_corrupt")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml"})
_NOT_A_PASSWORD = frozenset({"none", "required", "below", "above", "attached", "protected", "the", "your", "reset",
                             "expired", "expire", "expires", "change", "changed", "manager", "policy", "same", "sent",
                             "is", "will", "for", "and", "not"})


@dataclass(frozen=True)
class _Types:
    """The parts of attachments.toml beyond the extension/sniffed classes in DetectionData."""

    document_declared: frozenset[str]
    declared_prefixes: dict[str, tuple[str, ...]]
    text_extensions: frozenset[str]  # HTML inside these is shown as text
    zip_extensions: frozenset[str]  # documents that are ZIP packages
    password_word: re.Pattern[str]
    password_after: tuple[re.Pattern[str], ...]  # what may follow the word, tried in turn


_VERB = r"(?:is|ist|est|es|e|é|sera|será|lautet|wordt|jest|je|will\s+be)\b"
_TOKEN = r"[\"'“”‘’«»(]?(?P<token>[^\s\"'“”‘’«»<>()]{3,40})"


@lru_cache(maxsize=1)
def _types() -> _Types:
    text = resources.files("mailwarden").joinpath("data", "attachments.toml").read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    listed = [w.lower() for w in doc["password_hint"]["words"] if w.strip()]
    words = sorted(set(listed) | {fold(w) for w in listed}, key=len, reverse=True)  # "contraseña", "contrasena"
    return _Types(
        document_declared=frozenset(doc["document"].get("declared", [])),
        declared_prefixes={name: tuple(doc[name].get("declared_prefixes", [])) for name in ("image", "media")},
        text_extensions=frozenset(doc["mismatch"].get("text_extensions", [])),
        zip_extensions=frozenset(doc["mismatch"].get("zip_extensions", [])),
        password_word=re.compile(
            r"(?<!\w)(?:" + "|".join(r"\s+".join(map(re.escape, w.split())) for w in words) + r")(?!\w)"),
        password_after=(
            re.compile(r"(?P<sep>[\s:=：\-–]*(?:" + _VERB + r"[\s:=]*)?)" + _TOKEN),  # "password: X", "password is X"
            re.compile(r"(?P<sep>(?:\s+[\w'’]{1,15}){1,4}?\s*(?:[:=：]|\s" + _VERB + r")[\s:=]*)" + _TOKEN),
        ),  # the second: "password for the zip: X", "senha do arquivo é X"
    )


def _classes_of(extension: str, sniffed: str, context: Context) -> set[str]:
    return {name for name, (extensions, sniffed_types) in context.data.attachment_classes.items()
            if extension in extensions or sniffed in sniffed_types}


def _class(context: Context, name: str) -> frozenset[str]:
    """The extensions of one class in attachments.toml."""
    return context.data.attachment_classes.get(name, (frozenset(), frozenset()))[0]


def _extension(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower().rstrip(". ")
    return base.rsplit(".", 1)[-1].strip() if "." in base else ""


def _decoy_classes(context: Context) -> frozenset[str]:
    """Extensions a file pretends to have: documents, images, media."""
    return _class(context, "document") | _class(context, "image") | _class(context, "media")


def _double_extension(name: str, context: Context) -> str | None:
    """Why a file name disguises its real type, if it does: ``invoice.pdf.exe``, ``scan.doc    .js``,
    a right-to-left override."""
    if _BIDI_CONTROLS.search(name):
        return "a Unicode direction override in the name"
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower().rstrip(". ")
    parts = base.split(".")
    if len(parts) < 3 and not _PADDING.search(base):
        return None
    last = parts[-1].strip()
    risky = {c for c in ("executable", "html", "disk_image", "shortcut") if last in _class(context, c)}
    if not risky:
        return None
    if len(parts) >= 3 and parts[-2].strip() in _decoy_classes(context):
        return f".{parts[-2].strip()} before the real extension .{last}"
    if _PADDING.search(base):
        return f"blank padding before the real extension .{last}"
    return None


def _pretends(attachment: Attachment, context: Context) -> str | None:
    """What the name or declared type claims (document/image/media) when that is not what it is."""
    declared = attachment.declared_type.lower()
    types = _types()
    extension = attachment.extension
    sniffed = attachment.sniffed_type
    if (sniffed == "html" and extension in types.text_extensions) or (
            sniffed == "zip" and extension in types.zip_extensions):
        return None
    for name in ("document", "image", "media"):
        if extension in _class(context, name):
            return f".{extension}"
    if declared in types.document_declared:
        return declared
    for prefixes in types.declared_prefixes.values():
        if declared.startswith(prefixes) and declared != "image/svg+xml":
            return declared
    return None


def _opens_as_html(attachment: Attachment, context: Context) -> bool:
    """Whether a browser renders the file: by its name, its declared type, or markup with no other claim
    (markup in a .txt is shown as text; an unparsed MIME container is a body, not a file)."""
    declared = attachment.declared_type.lower()
    if attachment.extension in _class(context, "html") or declared in _HTML_TYPES:
        return True
    if declared.startswith(("multipart/", "message/")):
        return False
    return attachment.extension not in _decoy_classes(context)


def _is_executable_member(member: ArchiveMember, context: Context) -> bool:
    classes = _classes_of(_extension(member.name), member.sniffed_type, context)
    return "executable" in classes


def _password_hint(message: Message) -> str | None:
    """A password written in the subject or body: a hint word, then something that looks like one."""
    types = _types()
    text = (message.subject + "\n" + message.text[:50_000]).lower()
    for word in islice(types.password_word.finditer(text), 50):
        for after in types.password_after:
            match = after.match(text, word.end())
            if match is None:
                continue
            token = match.group("token").strip(".,;!?")
            if len(token) < 3 or token in _NOT_A_PASSWORD:
                continue
            if any(ch.isdigit() for ch in token) or any(ch in match.group("sep") for ch in ":=："):
                return " ".join(text[word.start() : match.end()].split())[:80]
    return None


def _executables(attachment: Attachment, classes: set[str], name: str, context: Context) -> list[Signal]:
    signals: list[Signal] = []
    if "executable" in classes:
        signals.append(context.signal("attachment.executable", f"executable attachment {name}",
                                      filename=name, sniffed=attachment.sniffed_type))
    elif "shortcut" in classes and attachment.shortcut_target and not attachment.shortcut_target.lower().startswith(
            ("http://", "https://")):
        signals.append(context.signal("attachment.executable",
                                      f"shortcut {name} opens {attachment.shortcut_target[:80]}",
                                      filename=name, target=attachment.shortcut_target[:200]))
    inside = [m for m in attachment.members if _is_executable_member(m, context)]
    if inside:
        first = inside[0]
        signals.append(context.signal("attachment.executable_in_archive",
                                      f"archive {name} contains executable {first.path}",
                                      filename=name, member=first.path, sniffed=first.sniffed_type,
                                      members=[m.path for m in inside[:10]]))
    images = [m for m in attachment.members if "disk_image" in _classes_of(_extension(m.name), m.sniffed_type, context)]
    if "disk_image" in classes:
        signals.append(context.signal("attachment.disk_image", f"disk image attachment {name}", filename=name))
    elif images:
        signals.append(context.signal("attachment.disk_image", f"archive {name} contains disk image {images[0].path}",
                                      filename=name, member=images[0].path))
    return signals


def _html(attachment: Attachment, classes: set[str], name: str, context: Context) -> list[Signal]:
    if "html" not in classes:
        return []
    features = set(attachment.html_features)
    signals = [context.signal("attachment.html_file", f"HTML file attachment {name}", filename=name)]
    login = sorted(features & {"password_form", "form_post_external"})
    if login:
        signals.append(context.signal("attachment.html_login_form",
                                      f"HTML attachment {name} contains a login form ({', '.join(login)})",
                                      filename=name, indicators=login))
    redirect = sorted(features & {"js_redirect", "html_smuggling"})
    if redirect:
        signals.append(context.signal("attachment.html_redirect",
                                      f"HTML attachment {name} runs script to go elsewhere ({', '.join(redirect)})",
                                      filename=name, indicators=redirect))
    elif "obfuscated_script" in features:
        signals.append(context.signal("attachment.html_redirect",
                                      f"HTML attachment {name} contains obfuscated script", factor=0.6,
                                      filename=name, indicators=["obfuscated_script"]))
    return signals


def _macros(attachment: Attachment, name: str, context: Context) -> list[Signal]:
    if attachment.has_macros:
        autoexec = [i for i in attachment.macro_indicators if i.startswith("AutoExec:")]
        factor = 1.0 if autoexec else 0.6
        how = f" that run on opening ({', '.join(a.split(':', 1)[1] for a in autoexec[:3])})" if autoexec else ""
        return [context.signal("attachment.macro_document", f"{name} contains macros{how}", factor=factor,
                               filename=name, indicators=list(attachment.macro_indicators[:10]))]
    inside = [m for m in attachment.members if m.has_macros or _extension(m.name) in _class(context, "macro_document")]
    if inside:
        return [context.signal("attachment.macro_document", f"archive {name} contains macro document {inside[0].path}",
                               factor=0.6, filename=name, member=inside[0].path)]
    return []


def _encryption(attachment: Attachment, classes: set[str], name: str, message: Message,
                context: Context) -> list[Signal]:
    encrypted_members = [m.path for m in attachment.members if m.encrypted]
    is_archive = "archive" in classes or bool(attachment.members)
    if not (attachment.encrypted or encrypted_members):
        return []
    signals: list[Signal] = []
    if is_archive:
        signals.append(context.signal("attachment.encrypted_archive", f"password-protected archive {name}",
                                      filename=name, members=encrypted_members[:10]))
    hint = _password_hint(message)
    if hint:
        kind = "archive" if is_archive else "document"
        signals.append(context.signal("attachment.password_in_body",
                                      f"the body gives the password of the encrypted {kind} {name}: {hint!r}",
                                      filename=name, hint=hint))
    return signals


def _names(attachment: Attachment, name: str, context: Context) -> list[Signal]:
    signals: list[Signal] = []
    for candidate, member in [(attachment.filename, None), *((m.name, m) for m in attachment.members)]:
        reason = _double_extension(candidate, context)
        if reason:
            where = f"{name} member {member.path}" if member else name
            signals.append(context.signal("attachment.double_extension",
                                          f"file name disguises its type: {where} ({reason})",
                                          filename=name, member=member.path if member else "", reason=reason))
            break
    mismatch = context.data.attachment_classes.get("mismatch", (frozenset(), frozenset()))[1]
    claimed = _pretends(attachment, context) if attachment.sniffed_type in mismatch else None
    if claimed:
        signals.append(context.signal("attachment.type_mismatch",
                                      f"{name} claims to be {claimed} but is {attachment.sniffed_type}",
                                      filename=name, claimed=claimed, sniffed=attachment.sniffed_type))
    return signals


def _pdf(attachment: Attachment, name: str, context: Context) -> list[Signal]:
    features = set(attachment.pdf_features)
    if "launch" in features or {"javascript", "open_action"} <= features:
        active = sorted(features & {"launch", "javascript", "open_action"})
        return [context.signal("attachment.pdf_active_content",
                               f"PDF {name} acts when opened ({', '.join(active)})",
                               filename=name, indicators=active)]
    return []


def _unscannable(attachment: Attachment, name: str, context: Context) -> list[Signal]:
    found = [d for d in _ARCHIVE_DEFECTS if d in attachment.defects]
    if not found:
        return []
    if "archive_bomb" in found:
        factor = 1.5
    elif found == ["archive_corrupt"]:
        factor = 0.5  # as often sloppy or truncated as hostile
    else:
        factor = 1.0
    return [context.signal("attachment.unscannable", f"archive {name} could not be fully inspected: {', '.join(found)}",
                           factor=factor, filename=name, defects=found)]


def analyze(message: Message, context: Context) -> list[Signal]:
    signals: list[Signal] = []
    for attachment in message.attachments:
        name = attachment.filename or "(unnamed)"
        classes = _classes_of(attachment.extension, attachment.sniffed_type, context)
        if "html" in classes and not _opens_as_html(attachment, context):
            classes.discard("html")
        signals += _executables(attachment, classes, name, context)
        signals += _html(attachment, classes, name, context)
        signals += _macros(attachment, name, context)
        signals += _encryption(attachment, classes, name, message, context)
        signals += _names(attachment, name, context)
        signals += _pdf(attachment, name, context)
        signals += _unscannable(attachment, name, context)
    return _once_per_id(signals)


def _once_per_id(signals: list[Signal]) -> list[Signal]:
    """The strongest signal of each id: ten executables in one mail are one finding, not ten."""
    best: dict[str, Signal] = {}
    for signal in signals:
        if signal.id not in best or signal.score > best[signal.id].score:
            best[signal.id] = signal
    return list(best.values())
