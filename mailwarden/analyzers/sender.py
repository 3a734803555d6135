"""Display-name impersonation: the name of a VIP, an employee, a partner or the organisation itself on
mail from a domain that is not theirs.

Names match tolerant of order, accents, titles and initials ("Kell, Adrian", "A. Kell"). A display name
already seen from that very sender in learned mail is not an impersonation, nor is an e-signature or
helpdesk service relaying for someone ("Jonathan Pryce via DocuSign" from DocuSign itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailwarden.config import OrgConfig, Partner, Person
from mailwarden.detection import fold

if TYPE_CHECKING:
    from mailwarden.message import Address, Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal

NAME = "sender"
SIGNALS = (
    "sender.display_name_vip",
    "sender.display_name_employee",
    "sender.display_name_partner",
    "sender.display_name_own_org",
    "sender.known_correspondent",
)

# A correspondent we have learned mail from at least this often counts as known.
KNOWN_AFTER = 2

_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "herr", "frau", "mme", "m", "sr", "sra", "ing"}
_LEGAL_FORMS = {"ltd", "limited", "gmbh", "llp", "llc", "inc", "plc", "sa", "sas", "sarl", "bv", "nv", "ag", "co",
                "corp", "corporation", "kg", "ug", "srl", "spa", "oy", "ab", "as", "pty", "group", "the"}
_WORD = re.compile(r"[a-z0-9]+")


def name_tokens(name: str) -> list[str]:
    return [t for t in _WORD.findall(fold(name)) if t not in _TITLES]


def is_same_person(display_name: str, person_name: str) -> bool:
    """Whether a display name names this person: all their name words in any order, or initial + surname."""
    person = name_tokens(person_name)
    shown = name_tokens(display_name)
    if len(person) < 2 or not shown:
        return False
    if set(person) <= set(shown):
        return True
    first, last = person[0], person[-1]
    return last in shown and first[0] in shown and len(shown) <= 3


def _core_words(company: str) -> list[str]:
    """The distinctive words of a company name: its first word if long, else its first two."""
    words = [w for w in name_tokens(company) if w not in _LEGAL_FORMS]
    if not words:
        return []
    return words[:1] if len(words[0]) >= 7 or len(words) == 1 else words[:2]


def names_company(display_name: str, company: str) -> bool:
    core = _core_words(company)
    if not core:
        return False
    shown = name_tokens(display_name)
    return any(shown[i:i + len(core)] == core for i in range(len(shown)))


@dataclass(frozen=True)
class _Contact:
    name: str
    partner: str
    domains: tuple[str, ...]


@dataclass(frozen=True)
class _NameIndex:
    """The organisation's names, looked up by word so that 1,000 partners cost no more than ten."""

    people_by_surname: dict[str, list[Person]]
    partners_by_core: dict[tuple[str, ...], Partner]
    contacts_by_surname: dict[str, list[_Contact]]


_INDEXES: dict[int, tuple[OrgConfig, _NameIndex]] = {}


def _name_index(org: OrgConfig) -> _NameIndex:
    """Built once per config (keyed by identity; the config is kept alive alongside)."""
    cached = _INDEXES.get(id(org))
    if cached is not None and cached[0] is org:
        return cached[1]
    if len(_INDEXES) > 64:
        _INDEXES.clear()
    index = _build_name_index(org)
    _INDEXES[id(org)] = (org, index)
    return index


def _build_name_index(org: OrgConfig) -> _NameIndex:
    people: dict[str, list[Person]] = {}
    for person in org.people:
        words = name_tokens(person.name)
        if len(words) >= 2:
            people.setdefault(words[-1], []).append(person)
    partners = {tuple(core): partner for partner in org.partners if (core := _core_words(partner.name))}
    contacts: dict[str, list[_Contact]] = {}
    for partner in org.partners:
        for address in partner.contacts:
            parts = [p for p in re.split(r"[._-]", address.split("@", 1)[0]) if p.isalpha()]
            if len(parts) == 2 and all(len(p) >= 2 for p in parts):
                contacts.setdefault(parts[1].lower(), []).append(
                    _Contact(" ".join(parts), partner.name, partner.domains))
    return _NameIndex(people, partners, contacts)


def _belongs_to(domain: str, domains: tuple[str, ...]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in domains)


def _is_relay_for_someone(sender: Address, message: Message, context: Context) -> bool:
    """"X via DocuSign", GitHub or SharePoint notifications naming a colleague, from the service's own
    authenticated domain: a service acting for X, not someone posing as X."""
    domain = sender.registrable_domain
    if domain in context.data.freemail:  # anyone can have a gmail.com address
        return False
    if not any(r.result == "pass" for ar in message.auth for r in ar.method("dmarc")):
        return False
    return domain in context.data.services or context.data.is_brand_domain(domain)


def _replies_reach(message: Message, domains: tuple[str, ...]) -> bool:
    """Replies go to the named party's own domain: a service sending on their behalf (Xero, Box, invitations)."""
    return any(reply.domain and _belongs_to(reply.domain, domains) for reply in message.reply_to)


def _seen_from_this_sender(sender: Address, context: Context) -> bool:
    profile = context.profiles.sender(sender.email)
    return profile is not None and sender.display_name.lower() in profile.display_names


def _people(message: Message, sender: Address, free: bool, context: Context) -> list[Signal]:
    if _replies_reach(message, context.org.domains):
        return []
    index = _name_index(context.org)
    shown = set(name_tokens(sender.display_name))
    candidates = [p for word in shown for p in index.people_by_surname.get(word, [])]
    for person in candidates:
        if person.email == sender.email or not is_same_person(sender.display_name, person.name):
            continue
        where = "a free-mail account" if free else sender.domain
        signal_id = "sender.display_name_vip" if person.vip else "sender.display_name_employee"
        return [context.signal(signal_id, f"uses the name of {person.name} ({person.title or 'staff'}) from {where}",
                               factor=1.2 if free else 1.0, person=person.email, display_name=sender.display_name,
                               sender=sender.email)]
    return []


def _partners(message: Message, sender: Address, context: Context) -> list[Signal]:
    index = _name_index(context.org)
    shown = name_tokens(sender.display_name)
    grams = {tuple(shown[i:i + n]) for n in (1, 2) for i in range(len(shown) - n + 1)}
    for gram in sorted(grams):
        partner = index.partners_by_core.get(gram)
        if partner is None or _belongs_to(sender.domain, partner.domains) or _replies_reach(message, partner.domains):
            continue
        return [context.signal("sender.display_name_partner",
                               f"uses the name of partner {partner.name} from {sender.domain}",
                               partner=partner.name, display_name=sender.display_name, sender=sender.email)]
    for contact in (c for word in set(shown) for c in index.contacts_by_surname.get(word, [])):
        if _belongs_to(sender.domain, contact.domains) or _replies_reach(message, contact.domains):
            continue
        if is_same_person(sender.display_name, contact.name):
            return [context.signal("sender.display_name_partner",
                                   f"uses the name of {contact.name.title()} of partner {contact.partner} "
                                   f"from {sender.domain}", partner=contact.partner, display_name=sender.display_name,
                                   sender=sender.email)]
    return []


def _known_correspondent(message: Message, sender: Address, context: Context) -> list[Signal]:
    """Authenticated mail from a domain we have learned regular legitimate mail from."""
    profile = context.profiles.domain(sender.registrable_domain)
    if profile is None or profile.count < KNOWN_AFTER:
        return []
    if not any(r.result == "pass" for ar in message.auth for r in ar.method("dmarc")):
        return []
    return [context.signal("sender.known_correspondent",
                           f"authenticated mail from {sender.registrable_domain}, a known correspondent "
                           f"({profile.count} earlier messages)", domain=sender.registrable_domain,
                           count=profile.count)]


def analyze(message: Message, context: Context) -> list[Signal]:
    sender = message.from_
    org = context.org
    if sender is None or not sender.domain:
        return []
    known = _known_correspondent(message, sender, context)
    if not sender.display_name or org.is_own_domain(sender.domain):
        return known
    if _seen_from_this_sender(sender, context) or _is_relay_for_someone(sender, message, context):
        return known
    free = sender.registrable_domain in context.data.freemail
    signals = known + _people(message, sender, free, context)
    signals += _partners(message, sender, context)
    shown = sender.display_name.lower()
    names_us = (org.name and names_company(sender.display_name, org.name)) or any(d in shown for d in org.domains)
    if names_us and not _replies_reach(message, org.domains):
        signals.append(context.signal("sender.display_name_own_org",
                                      f"uses our own name or domain from outside: {sender.domain}",
                                      display_name=sender.display_name, sender=sender.email))
    return signals
