"""The original of a message forwarded inline: who sent it and its subject, read from the header block a mail client
writes above the forwarded text ("From: ... Sent: ... To: ... Subject: ..."), in several languages.

A forward is judged by its original too: a user passing on a lure still delivers the lure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailwarden.message import Address, make_address

if TYPE_CHECKING:
    from mailwarden.message import Message

# Only the top of the body: a forward quoted deep inside a long thread says little about this message.
SEARCH_CHARS = 3000

_FORWARDED_FROM = re.compile(
    r"^[ \t>*]*(?:from|de|von|van|da|fran|od|от)\s*:\s*(?P<sender>[^\n]{3,200})\n(?:[^\n]*\n){0,2}?[ \t>*]*"
    r"(?:sent|date|enviado|enviada|gesendet|datum|envoye|envoyé|verzonden|inviato|data|fecha|skickat)\s*:",
    re.IGNORECASE | re.MULTILINE)
_SUBJECT = re.compile(r"^[ \t>*]*(?:subject|assunto|asunto|betreff|objet|onderwerp|oggetto|ämne|temat|тема)\s*:"
                      r"[ \t]*(?P<subject>[^\n]{0,300})", re.IGNORECASE | re.MULTILINE)
# The subject line follows the From line within the same header block: a few lines at most.
_BLOCK_LINES = 6


@dataclass(frozen=True)
class ForwardedOriginal:
    sender: Address | None
    subject: str


def forwarded_original(message: Message) -> ForwardedOriginal | None:
    """The original message forwarded inline near the top of the body, if there is one."""
    text = message.text_plain[:SEARCH_CHARS] or message.text_html[:SEARCH_CHARS]
    match = _FORWARDED_FROM.search(text)
    if not match:
        return None
    block = "\n".join(text[match.start():].split("\n")[:_BLOCK_LINES + 1])
    subject = _SUBJECT.search(block)
    return ForwardedOriginal(_address(match.group("sender")), subject.group("subject").strip() if subject else "")


_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)


def _address(raw: str) -> Address | None:
    """The first address on the line ("Name <a@b.example>", "a@b.example [mailto:a@b.example] On Behalf Of ...")."""
    found = _EMAIL.search(raw)
    if not found:
        return None
    display = raw[:found.start()].rstrip(" <[\t").strip().strip('"\'')
    return make_address(display, found.group(0))
