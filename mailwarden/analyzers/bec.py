"""Vendor fraud and business email compromise, judged against what past mail taught us.

* payment-instruction changes: bank identifiers a partner never used, "new bank details" language;
* gift cards, payroll diversion, wire requests, "don't call to verify";
* a known correspondent departing from its baseline: replies diverted to a new domain, new sending
  infrastructure and mailer (account takeover when it comes with a payment change);
* thread hijack: a reply into a known thread from a domain that never wrote in it;
* first contact: a domain never seen before that asks for money.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailwarden.detection import fold, host_matches
from mailwarden.payments import find_payment_ids
from mailwarden.profiles import Profile, mailer_family, message_id_style, network_of, referenced_ids, sending_ips

if TYPE_CHECKING:
    from mailwarden.message import Address, Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal

NAME = "bec"
SIGNALS = (
    "bec.bank_change",
    "bec.new_bank_details",
    "bec.bank_change_language",
    "bec.gift_cards",
    "bec.payroll_diversion",
    "bec.wire_request",
    "bec.verification_bypass",
    "bec.reply_to_diversion",
    "bec.new_infrastructure",
    "bec.account_takeover",
    "bec.thread_hijack",
    "bec.first_contact_request",
    "bec.vendor_onboarding",
    "bec.unfamiliar_file_host",
)

MAX_TEXT = 50_000


def _text(message: Message) -> str:
    parts = [message.subject, message.text_plain[:MAX_TEXT], message.text_html[:MAX_TEXT]]
    parts += [a.text[:MAX_TEXT] for a in message.attachments if a.text]
    return "\n".join(parts)


def _schemes(folded: str, context: Context) -> dict[str, list[str]]:
    return {c.name: found for c in context.data.bec if (found := c.matches(folded))}


def _known_payment_ids(sender: Address, context: Context) -> set[str]:
    known: set[str] = set()
    for profile in (context.profiles.sender(sender.email), context.profiles.domain(sender.registrable_domain)):
        if profile is not None:
            known |= profile.payment_ids
    partner = context.org.partner_for_domain(sender.domain)
    if partner is not None:
        for domain in partner.domains:
            profile = context.profiles.domain(domain)
            if profile is not None:
                known |= profile.payment_ids
    return known


def _payment_signals(message: Message, sender: Address, schemes: dict[str, list[str]], text: str,
                     context: Context) -> list[Signal]:
    ids = {str(p): p for p in find_payment_ids(text)}
    accounts = {k: p for k, p in ids.items() if p.kind != "bic"}  # a BIC alone names a bank, not an account
    known = _known_payment_ids(sender, context)
    new = sorted(k for k in accounts if k not in known)
    signals: list[Signal] = []
    if new and known:
        signals.append(context.signal(
            "bec.bank_change", f"bank details {', '.join(accounts[k].masked for k in new[:3])} differ from the "
            f"ones on file for {sender.registrable_domain}", new=[accounts[k].masked for k in new],
            known=sorted({k.split(":")[0] + " …" + k[-4:] for k in known})[:5]))
    elif new and "bank_change" in schemes:
        signals.append(context.signal(
            "bec.new_bank_details", f"announces new bank details ({accounts[new[0]].masked}) with no account on file",
            new=[accounts[k].masked for k in new], phrases=schemes["bank_change"]))
    elif "bank_change" in schemes and not known.intersection(accounts):
        signals.append(context.signal("bec.bank_change_language",
                                      f"asks to change payment details: {', '.join(schemes['bank_change'][:3])}",
                                      phrases=schemes["bank_change"]))
    return signals


def _scheme_signals(sender: Address, schemes: dict[str, list[str]], has_account: bool,
                    context: Context) -> list[Signal]:
    signals = []
    if "gift_cards" in schemes:
        signals.append(context.signal("bec.gift_cards", f"asks for gift cards: {', '.join(schemes['gift_cards'][:3])}",
                                      phrases=schemes["gift_cards"]))
    if "payroll" in schemes and ("bank_change" in schemes or has_account):
        signals.append(context.signal("bec.payroll_diversion",
                                      "asks to send someone's salary to a new account",
                                      phrases=schemes["payroll"] + schemes.get("bank_change", [])))
    if "wire" in schemes:
        signals.append(context.signal("bec.wire_request", f"asks for a transfer: {', '.join(schemes['wire'][:3])}",
                                      factor=1.0 if len(schemes["wire"]) > 1 else 0.6, phrases=schemes["wire"]))
    if "vendor_onboarding" in schemes:
        signals.append(context.signal("bec.vendor_onboarding",
                                      f"asks to be set up as a supplier: {', '.join(schemes['vendor_onboarding'][:3])}",
                                      phrases=schemes["vendor_onboarding"]))
    if "verification_bypass" in schemes:
        signals.append(context.signal("bec.verification_bypass",
                                      f"discourages verification: {', '.join(schemes['verification_bypass'][:3])}",
                                      phrases=schemes["verification_bypass"]))
    return signals


def _baseline(sender: Address, context: Context) -> Profile | None:
    """The learned profile to compare with: the sender's own, else its domain's (a new mailbox of a partner)."""
    return context.profiles.sender(sender.email) or context.profiles.domain(sender.registrable_domain)


def _reply_to_diversion(message: Message, sender: Address, profile: Profile, context: Context) -> list[Signal]:
    for reply in message.reply_to:
        domain = reply.registrable_domain
        if not domain or domain == sender.registrable_domain or domain in profile.reply_to_domains:
            continue
        return [context.signal("bec.reply_to_diversion",
                               f"replies now go to {domain}; {sender.registrable_domain} has never used it",
                               reply_to=reply.email, known=sorted(profile.reply_to_domains)[:5])]
    return []


def _authenticated(message: Message) -> bool:
    return any(r.result == "pass" for ar in message.auth for r in (*ar.method("dmarc"), *ar.method("dkim")))


def _new_infrastructure(message: Message, sender: Address, profile: Profile, context: Context) -> list[Signal]:
    """A new sending network together with a new mail program or Message-ID style: another system sends."""
    domain_profile = context.profiles.domain(sender.registrable_domain) or profile
    known_networks = profile.networks | domain_profile.networks
    new_ips = sorted(ip for ip in sending_ips(message) if network_of(ip) not in known_networks)
    if not (new_ips and known_networks):
        return []
    mailer = mailer_family(message)
    known_mailers = profile.mailers | domain_profile.mailers
    style = message_id_style(message)
    known_styles = profile.message_id_styles | domain_profile.message_id_styles
    changes = []
    if mailer and known_mailers and mailer not in known_mailers:
        changes.append(f"a new mail program ({mailer})")
    if style and known_styles and style not in known_styles:
        changes.append("a new Message-ID style")
    if not changes:
        return []
    return [context.signal("bec.new_infrastructure",
                           f"{sender.email} writes from a new network ({', '.join(new_ips)}) with "
                           f"{' and '.join(changes)}", new_ips=new_ips, mailer=mailer,
                           known_mailers=sorted(known_mailers)[:5], message_id_style=style)]


def _unfamiliar_file_host(message: Message, sender: Address, profile: Profile, context: Context) -> list[Signal]:
    """A known correspondent suddenly linking to file sharing or cloud hosting it never used."""
    data = context.data
    for url in message.urls:
        domain = url.registrable_domain
        if domain in profile.link_domains or domain == sender.registrable_domain:
            continue
        service = host_matches(url.host, data.free_hosting) or host_matches(url.host, data.file_sharing)
        if service:
            return [context.signal("bec.unfamiliar_file_host",
                                   f"{sender.registrable_domain} links to {url.host} ({service}), which it never used",
                                   url=url.url, service=service)]
    return []


def _thread_hijack(message: Message, sender: Address, context: Context) -> list[Signal]:
    referenced = referenced_ids(message)
    if not referenced:
        return []
    writers = context.profiles.thread_writers(referenced)
    if not writers or sender.registrable_domain in writers or context.org.is_own_domain(sender.domain):
        return []
    return [context.signal("bec.thread_hijack",
                           f"replies into a known conversation with {', '.join(sorted(writers))} but comes from "
                           f"{sender.registrable_domain}", thread_writers=sorted(writers),
                           sender=sender.email)]


def _asks_for_credentials(message: Message, context: Context) -> bool:
    folded = fold(f"{message.subject}\n{message.text[:MAX_TEXT]}")
    return bool(context.data.lure("credential").matches(folded, limit=1))


def _asks_for_money(schemes: dict[str, list[str]], has_account: bool) -> bool:
    return has_account or bool({"bank_change", "gift_cards", "payroll", "wire", "vendor_onboarding"} & set(schemes))


def analyze(message: Message, context: Context) -> list[Signal]:
    sender = message.from_
    if sender is None or not sender.domain:
        return []
    own = context.org.is_own_domain(sender.domain)
    if own and _authenticated(message):
        return []  # our own authenticated staff talk about payments all day
    text = _text(message)
    schemes = _schemes(fold(text), context)
    signals = _payment_signals(message, sender, schemes, text, context)
    has_account = any(s.id in ("bec.bank_change", "bec.new_bank_details") for s in signals)
    signals += _scheme_signals(sender, schemes, has_account, context)
    profile = _baseline(sender, context)
    departures: list[Signal] = []
    if profile is not None and not own:
        departures += _reply_to_diversion(message, sender, profile, context)
        departures += _unfamiliar_file_host(message, sender, profile, context)
        if _authenticated(message):
            departures += _new_infrastructure(message, sender, profile, context)
    signals += departures
    new_file_host = any(s.id == "bec.unfamiliar_file_host" for s in departures)
    changes_payment = has_account or "bank_change" in schemes or "payroll" in schemes or (
        new_file_host and _asks_for_credentials(message, context))
    if departures and changes_payment:
        signals.append(context.signal("bec.account_takeover",
                                      f"a known correspondent ({sender.email}) departs from its usual behaviour "
                                      f"and changes where money or credentials go",
                                      departures=[s.id for s in departures]))
    signals += _thread_hijack(message, sender, context)
    known_anywhere = profile is not None or context.org.partner_for_domain(sender.domain) is not None
    if len(context.profiles) and not known_anywhere and not own and _asks_for_money(schemes, has_account):
        signals.append(context.signal("bec.first_contact_request",
                                      f"first message ever from {sender.registrable_domain}, and it asks for money",
                                      domain=sender.registrable_domain))
    return signals
