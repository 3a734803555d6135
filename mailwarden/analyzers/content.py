"""What the message asks for and how: language lures, brand impersonation, greeting and layout tricks.

Phrase lists and brands are data (``mailwarden/data/lures.toml``, ``brands.toml``); this module only
decides how much they weigh together.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

from mailwarden.detection import fold, is_disguised_letter, is_foreign_in_latin_word
from mailwarden.forwarded import ForwardedOriginal, forwarded_original
from mailwarden.message import Address

if TYPE_CHECKING:
    from mailwarden.message import Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal

NAME = "content"
SIGNALS = (
    "content.credential_lure",
    "content.urgency",
    "content.prize_lure",
    "content.payment_request",
    "content.secrecy",
    "content.spam_topic",
    "content.crypto_lure",
    "content.dating_lure",
    "content.callback_scam",
    "content.legal_threat",
    "content.unsolicited_bulk",
    "content.brand_impersonation",
    "content.brand_in_subject",
    "content.generic_greeting",
    "content.recipient_in_subject",
    "content.obfuscated_text",
    "content.html_only",
    "content.subject_symbols",
    "content.random_token",
    "content.unsubscribe_without_header",
    "content.advance_fee",
    "content.freemail_lure",
    "content.role_name_freemail",
    "content.counter_in_name",
    "content.hidden_text",
    "content.image_only",
    "content.shouting_subject",
    "content.brand_in_sender_domain",
    "content.brand_in_link_domain",
    "content.form_abuse",
)

MAX_TEXT = 20_000
# Newsletters hide a short preview line ("preheader"); padding to fool filters is far longer.
HIDDEN_TEXT_ALLOWANCE = 200
# How strongly N distinct phrases of one category count (one phrase is weak, three are conclusive).
_HIT_FACTORS = (0.0, 0.5, 0.8, 1.0)

_GENERIC_GREETING = re.compile(
    r"\b(?:dear|hello|hi)\s+(?:valued\s+)?(?:customer|user|client|member|account\s*holder|sir/?madam|sir|madam|"
    r"beneficiary|friend|winner|e-?mail\s+user|subscriber)\b|\b(?:sehr\s+geehrte[rs]?\s+kund\w*|liebe[rs]?\s+kund\w*|"
    r"cher\s+client|chere\s+cliente|estimado\s+cliente|querido\s+cliente|prezado\s+cliente|caro\s+cliente|"
    r"beste\s+klant|geachte\s+klant)\b")


# What a brand's own, authenticated notifications say as a matter of course (sign-in alerts, resets).
_EXPECTED_FROM_VERIFIED_BRANDS = {"content.credential_lure", "content.urgency"}


def _verified_brand_sender(message: Message, context: Context) -> bool:
    """Mail that passed DMARC for a domain of a well-known brand (a real DocuSign or Microsoft notice)."""
    sender = message.from_
    if sender is None or not context.data.is_brand_domain(sender.registrable_domain):
        return False
    return any(r.result == "pass" for ar in message.auth for r in ar.method("dmarc"))


# A telephone number as scams print it: North American (+1) 8xx-xxx-xxxx or an international +CC number.
_PHONE = re.compile(r"(?<![\w+])(?:\+?1[\s.-]?)?\(?[2-9]\d{2}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)|"
                    r"\+\d{1,3}[\s.-]?\(?\d{1,4}\)?[\s.-]?\d{2,4}[\s.-]?\d{3,4}(?!\d)")


def _lures(folded: str, context: Context, skip: set[str]) -> list[Signal]:
    signals = []
    for category in context.data.lures:
        if category.signal in skip or (category.needs_phone_number and not _PHONE.search(folded)):
            continue
        found = category.matches(folded)
        if found:
            factor = _HIT_FACTORS[min(len(found), 3)]
            signals.append(context.signal(category.signal, f"{category.name} language: {', '.join(found[:4])}",
                                          factor=factor, phrases=found))
    return signals


def _freemail_lure(message: Message, lures: list[Signal], context: Context) -> list[Signal]:
    """A free-mail account asking for money, credentials or a prize claim: no company sends that from gmail."""
    sender = message.from_
    asks = [s for s in lures if s.id in _FREEMAIL_ASKS]
    if sender is None or sender.registrable_domain not in context.data.freemail or not asks:
        return []
    return [context.signal("content.freemail_lure", f"free-mail sender {sender.email} with a {asks[0].id} lure",
                           sender=sender.email, lures=[s.id for s in asks])]


_ASKING_LURES = {"content.credential_lure", "content.prize_lure", "content.payment_request", "content.advance_fee",
                 "content.callback_scam"}
# A friend on free mail may well congratulate you; only asking for credentials or money counts there.
_FREEMAIL_ASKS = {"content.credential_lure", "content.payment_request", "content.advance_fee"}


_WORD = re.compile(r"[\w\u0300-\u036f\u0700-\u074f\u20d0-\u20ff]+")
_COUNTER = re.compile(r"\(\s*\d{1,3}\s*\)")


def _sender_name_tricks(message: Message, context: Context) -> list[Signal]:
    sender = message.from_
    if sender is None or not sender.display_name:
        return []
    signals = []
    name = fold(sender.display_name)
    role = context.data.role_pattern
    if sender.registrable_domain in context.data.freemail and role is not None and role.search(name):
        signals.append(context.signal("content.role_name_freemail",
                                      f"a free-mail account named like a company function: {sender.display_name}",
                                      display_name=sender.display_name, sender=sender.email))
    if _COUNTER.search(name):
        signals.append(context.signal("content.counter_in_name",
                                      f"sender name imitates a notification counter: {sender.display_name}",
                                      display_name=sender.display_name))
    return signals


def _own_or_partner(domain: str, context: Context) -> bool:
    return context.org.is_own_domain(domain) or context.org.partner_for_domain(domain) is not None


# Where a message names who it is from: the first lines of its text.
_LETTERHEAD = 400


def _brand_impersonation(message: Message, context: Context, lures: list[Signal],
                         original: ForwardedOriginal | None) -> list[Signal]:
    sender = message.from_
    forwarded = original.sender if original else None
    if forwarded is not None and (sender is None or forwarded.registrable_domain != sender.registrable_domain):
        found = _impersonated_brand(forwarded, message, context)
        if found:
            return [context.signal("content.brand_impersonation",
                                   f"forwarded message claims to be {found} but came from {forwarded.domain}",
                                   brand=found, from_domain=forwarded.domain, forwarded=True)]
    if sender is None or not sender.domain or _own_or_partner(sender.domain, context):
        return []
    sending = {sender.registrable_domain}
    sending |= {r.domain.lower() for ar in message.auth for r in ar.method("dkim") if r.result == "pass" and r.domain}
    signals = []
    local_and_name = fold(f"{sender.display_name} {sender.local_part.replace('.', ' ').replace('-', ' ')}")
    named = context.data.brands_named_in(local_and_name) or context.data.brands_hidden_in(fold(sender.display_name))
    for brand in named:
        if not _sent_by(brand.domains, sending):
            signals.append(context.signal(
                "content.brand_impersonation",
                f"sender name claims to be {brand.key} but mail is from {sender.domain}",
                brand=brand.key, from_domain=sender.domain))
            return signals
    if not any(s.id in _ASKING_LURES for s in lures):
        return signals  # a brand in a subject is news or discussion unless the message also asks for something
    if sender.registrable_domain in context.data.freemail:
        for brand in context.data.brands_named_in(fold(message.text[:_LETTERHEAD])):
            if not _sent_by(brand.domains, sending):
                return [context.signal("content.brand_impersonation",
                                       f"a free-mail account ({sender.email}) writes as {brand.key} and asks for "
                                       "something", brand=brand.key, from_domain=sender.domain, letterhead=True)]
    for brand in context.data.brands_named_in(fold(message.subject)):
        if brand.domains and not _sent_by(brand.domains, sending):
            signals.append(context.signal(
                "content.brand_in_subject", f"subject names {brand.key} but mail is from {sender.domain}",
                brand=brand.key, from_domain=sender.domain))
            break
    return signals


def _brand_in_domains(message: Message, context: Context) -> list[Signal]:
    """Someone else's domain built around a brand name: "samsclub-survey.example", "paypal-secure.example"."""
    signals = []
    sender = message.from_
    if sender and sender.domain and not _own_or_partner(sender.domain, context):
        brand = context.data.brand_in_domain(sender.registrable_domain)
        if brand:
            domain = sender.registrable_domain
            signals.append(context.signal("content.brand_in_sender_domain",
                                          f"sender domain {domain} is built on the {brand.key} brand",
                                          brand=brand.key, domain=domain))
    for url in message.urls:
        brand = context.data.brand_in_domain(url.registrable_domain)
        if brand and not _own_or_partner(url.registrable_domain, context):
            signals.append(context.signal("content.brand_in_link_domain",
                                          f"link to {url.registrable_domain}, built on the {brand.key} brand",
                                          brand=brand.key, domain=url.registrable_domain, url=url.url))
            break
    return signals


def _impersonated_brand(sender: Address, message: Message, context: Context) -> str | None:
    if _own_or_partner(sender.domain, context):
        return None
    name = fold(f"{sender.display_name} {sender.local_part.replace('.', ' ').replace('-', ' ')}")
    for brand in context.data.brands_named_in(name) or context.data.brands_hidden_in(fold(sender.display_name)):
        if not _sent_by(brand.domains, {sender.registrable_domain}):
            return brand.key
    return None


def _sent_by(brand_domains: frozenset[str], sending: set[str]) -> bool:
    return any(d == b or d.endswith("." + b) for d in sending for b in brand_domains)


def _recipient_in_subject(message: Message, context: Context) -> list[Signal]:
    subject = message.subject.lower()
    recipients = [a.email for a in message.to] + list(message.envelope.rcpt_to if message.envelope else ())
    for email in recipients:
        if email and "@" in email and email.lower() in subject:
            return [context.signal("content.recipient_in_subject",
                                   "the recipient's own address is pasted into the subject", recipient=email)]
    return []


def _obfuscated(message: Message, context: Context, original: ForwardedOriginal | None) -> list[Signal]:
    """Letters from other scripts or styled alphabets in the subject/sender name to defeat filters."""
    visible = message.subject + " " + (message.from_.display_name if message.from_ else "")
    if original is not None:
        visible += " " + original.subject + " " + (original.sender.display_name if original.sender else "")
    disguised = sum(1 for ch in visible if is_disguised_letter(ch)) + len(_I_FOR_L.findall(visible))
    disguised += len(_L_FOR_I.findall(visible))
    disguised += 2 * sum(1 for word in _WORD.findall(visible) if is_foreign_in_latin_word(word))
    if disguised >= 2 and not _mostly_non_latin(visible):
        return [context.signal("content.obfuscated_text", f"look-alike or styled letters in: {visible[:80]}",
                               text=visible[:160])]
    return []


# "PayPaI", "waIIet": a capital I standing in for a lower-case l inside a word.
_I_FOR_L = re.compile(r"(?<=[a-z])I+(?![A-Z])")
# "VlAGRA", "ClALlS": a lower-case l standing in for a capital I inside a word in capitals.
_L_FOR_I = re.compile(r"(?<=[A-Z])l(?=[A-Z])")
# A mixed-case run like "WBmmvfJdFtGqOvWw" that bulk senders append to defeat duplicate detection.
_RANDOM_TOKEN = re.compile(r"(?<![\w.@/])[A-Za-z0-9]{10,}(?![\w.@/-])")
_UNSUBSCRIBE = re.compile(r"\b(?:unsubscribe|opt[ -]out|abbestellen|abmelden|desinscri\w*|darse de baja|"
                          r"descadastr\w*|cancelar (?:a )?inscri\w*|afmelden|uitschrijven|disiscri\w*)\b")


def unmask_i_for_l(text: str) -> str:
    return _I_FOR_L.sub(lambda m: "l" * len(m.group(0)), text) if "I" in text else text


def _char_class(ch: str) -> int:
    return 0 if ch.isdigit() else 1 if ch.isupper() else 2


def _is_random_token(word: str) -> bool:
    upper = sum(ch.isupper() for ch in word)
    lower = sum(ch.islower() for ch in word)
    if upper < 3 or lower < 3:
        return False
    switches = sum(1 for a, b in itertools.pairwise(word) if _char_class(a) != _char_class(b))
    return switches >= 6


def _subject_tricks(message: Message, context: Context, original: ForwardedOriginal | None) -> list[Signal]:
    signals = _tricks_in_subject(message.subject, context)
    if original is not None and original.subject:
        seen = {s.id for s in signals}
        signals += [s for s in _tricks_in_subject(original.subject, context) if s.id not in seen]
    return signals


def _tricks_in_subject(subject: str, context: Context) -> list[Signal]:
    signals = []
    symbols = [ch for ch in subject if ord(ch) >= 0x2190 and not ch.isalpha() and not is_disguised_letter(ch)]
    if symbols:
        signals.append(context.signal("content.subject_symbols", f"emoji or symbols in the subject: {subject[:60]}",
                                      symbols="".join(symbols[:10])))
    letters = [ch for ch in subject if ch.isalpha()]
    if len(letters) >= 12 and sum(ch.isupper() for ch in letters) > 0.7 * len(letters):
        signals.append(context.signal("content.shouting_subject", f"subject in capitals: {subject[:60]}"))
    tokens = [w for w in _RANDOM_TOKEN.findall(subject) if _is_random_token(w)]
    if tokens:
        signals.append(context.signal("content.random_token", f"random-looking token in the subject: {tokens[0]}",
                                      token=tokens[0]))
    return signals


def _layout(message: Message, folded: str, context: Context) -> list[Signal]:
    signals = []
    if message.html and not message.text_plain.strip() and message.urls:
        signals.append(context.signal("content.html_only", "HTML-only message with links (no plain-text part)"))
    hidden = sum(doc.hidden_text_chars for doc in message.html)
    if hidden > HIDDEN_TEXT_ALLOWANCE:
        signals.append(context.signal("content.hidden_text", f"{hidden} characters of text hidden from the reader",
                                      hidden_chars=hidden))
    if message.html and len(message.text_html.strip()) < 120 and message.urls and not message.text_plain.strip():
        signals.append(context.signal("content.image_only", "HTML with links but almost no text (an image to click)"))
    if message.header("List-Unsubscribe") is None and _UNSUBSCRIBE.search(folded[-3000:]):
        signals.append(context.signal("content.unsubscribe_without_header",
                                      "bulk mail with an unsubscribe text but no List-Unsubscribe header"))
    return signals


# A site's own sign-up or contact-form mail whose "name" the spammer filled with a web address
# ("Username: www.xyz.blogspot.com - 150 000 USD"): the site is real, the content is not its own. Found as a
# bare host name (not inside a URL) right after a name or login label.
_BARE_HOST = re.compile(r"(?<![\w./@])www\.[a-z0-9-]+\.[a-z]{2,}", re.IGNORECASE)
_NAME_LABEL_BEFORE = re.compile(
    r"\b(?:user\s*name|username|login|identifiant|nom d'utilisateur|benutzername|nombre de usuario|usu[aá]rio|"
    r"name|nome|nom|hi|hello|dear|ol[aá]|bonjour|hola|hallo)\s*[:：,]?\s*$", re.IGNORECASE)
_LOGIN_PARAMETER_WITH_HOST = re.compile(r"[?&](?:login|user|username|user_login|name)=www\.", re.IGNORECASE)


def _name_field_with_host(text: str) -> str | None:
    if "www." not in text and "WWW." not in text:
        return None
    for found in _BARE_HOST.finditer(text):
        label = _NAME_LABEL_BEFORE.search(text[max(0, found.start() - 24):found.start()])
        if label:
            return label.group(0) + found.group(0)
    return None


def _form_abuse(message: Message, context: Context) -> list[Signal]:
    evidence = _name_field_with_host(message.text[:MAX_TEXT]) or next(
        (url.url for url in message.urls if _LOGIN_PARAMETER_WITH_HOST.search(url.url)), None)
    if evidence is None:
        return []
    return [context.signal("content.form_abuse", f"a web form's notification carries a web address as the name: "
                           f"{evidence[:80]}", field=evidence[:200])]


def _mostly_non_latin(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(1 for ch in letters if not ch.isascii()) > len(letters) * 0.6


def analyze(message: Message, context: Context) -> list[Signal]:
    name = message.from_.display_name if message.from_ else ""
    folded = fold(unmask_i_for_l(f"{message.subject}\n{name}\n{message.text[:MAX_TEXT]}"))
    signals = _lures(folded, context, _EXPECTED_FROM_VERIFIED_BRANDS if _verified_brand_sender(message, context)
                     else set())
    signals += _freemail_lure(message, signals, context)
    original = forwarded_original(message)
    signals += _subject_tricks(message, context, original)
    signals += _layout(message, folded, context)
    signals += _brand_impersonation(message, context, signals, original)
    signals += _sender_name_tricks(message, context)
    signals += _brand_in_domains(message, context)
    if _GENERIC_GREETING.search(folded):
        signals.append(context.signal("content.generic_greeting", "impersonal greeting (\"dear customer\")"))
    signals += _recipient_in_subject(message, context)
    signals += _obfuscated(message, context, original)
    signals += _form_abuse(message, context)
    return signals
