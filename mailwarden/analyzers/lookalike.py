"""Domains that imitate the organisation's own or its partners' domains, wherever the message names one.

Checked: From and Sender (the sender the reader sees), Reply-To (where answers go), Return-Path and DKIM d=
(who really sent it), and the host of every link. The similarity engine (``mailwarden.domains``) says which
protected domain is imitated, by which technique and how surely; that confidence scales the weight (85 or
more counts in full). One signal per kind, the most convincing; a link to the very lookalike the sender
already uses counts half, being the same evidence twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailwarden.urls import registrable_domain

if TYPE_CHECKING:
    from mailwarden.domains import Lookalike
    from mailwarden.message import Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal

NAME = "lookalike"
SIGNALS = (
    "sender.lookalike_own_domain",
    "sender.lookalike_partner",
    "sender.reply_to_lookalike",
    "sender.envelope_lookalike",
    "url.lookalike_own_domain",
    "url.lookalike_partner",
)

FULL_CONFIDENCE = 85  # engine score from which a lookalike counts with its full weight
MAX_LINK_HOSTS = 100
_WHOSE = {"own": "our own domain", "partner": "partner domain"}


@dataclass(frozen=True)
class _Seen:
    header: str
    domain: str
    found: Lookalike


def _factor(found: Lookalike) -> float:
    return min(1.0, found.score / FULL_CONFIDENCE)


def _describe(found: Lookalike, where: str) -> str:
    whose = _WHOSE.get(found.kind, "protected domain")
    owner = f" ({found.owner})" if found.owner and found.kind == "partner" else ""
    return f"{where} {found.domain} imitates {whose} {found.lookalike_of}{owner}: {found.technique}, {found.detail}"


def _header_domains(message: Message) -> list[tuple[str, str]]:
    """(header, domain) for every sender-side domain of the message, in order of weight."""
    pairs: list[tuple[str, str]] = []
    if message.from_ and message.from_.domain:
        pairs.append(("From", message.from_.domain))
    if message.sender and message.sender.domain:
        pairs.append(("Sender", message.sender.domain))
    pairs += [("Reply-To", a.domain) for a in message.reply_to if a.domain]
    if message.return_path and message.return_path.domain:
        pairs.append(("Return-Path", message.return_path.domain))
    pairs += [("DKIM d=", r.domain) for ar in message.auth for r in ar.method("dkim") if r.domain]
    return pairs


def _strongest(seen: list[_Seen]) -> _Seen | None:
    return max(seen, key=lambda s: s.found.score) if seen else None


def _sender_signals(message: Message, context: Context) -> tuple[list[Signal], set[str]]:
    index = context.domain_index
    by_header: dict[str, list[_Seen]] = {}
    for header, domain in _header_domains(message):
        found = index.check(domain)
        if found is not None:
            by_header.setdefault(header, []).append(_Seen(header, domain, found))
    signals: list[Signal] = []
    flagged = {registrable_domain(s.found.domain) for seen in by_header.values() for s in seen}
    sender = _strongest(by_header.get("From", []) + by_header.get("Sender", []))
    if sender is not None:
        kind = "own_domain" if sender.found.kind == "own" else "partner"
        headers = sorted({h for h, seen in by_header.items() for s in seen
                          if s.found.lookalike_of == sender.found.lookalike_of})
        signals.append(context.signal(
            f"sender.lookalike_{kind}", _describe(sender.found, f"{sender.header} domain"), _factor(sender.found),
            **_evidence(sender.found), headers=headers))
    reply = _strongest(by_header.get("Reply-To", []))
    if reply is not None and (sender is None or reply.found.lookalike_of != sender.found.lookalike_of
                              or registrable_domain(reply.domain) != registrable_domain(sender.domain)):
        signals.append(context.signal("sender.reply_to_lookalike", _describe(reply.found, "Reply-To domain"),
                                      _factor(reply.found), **_evidence(reply.found), headers=["Reply-To"]))
    envelope = _strongest(by_header.get("Return-Path", []) + by_header.get("DKIM d=", []))
    if envelope is not None and not signals:
        signals.append(context.signal("sender.envelope_lookalike",
                                      _describe(envelope.found, f"{envelope.header} domain"), _factor(envelope.found),
                                      **_evidence(envelope.found), headers=[envelope.header]))
    return signals, flagged


def _evidence(found: Lookalike) -> dict[str, object]:
    return {"domain": found.domain, "imitated": found.lookalike_of, "technique": found.technique,
            "confidence": found.score, "whose": found.kind, "owner": found.owner}


def _link_signals(message: Message, context: Context, flagged: set[str]) -> list[Signal]:
    index = context.domain_index
    best: dict[str, tuple[float, Lookalike, str]] = {}
    hosts: dict[str, str] = {}
    for url in message.urls:
        if not url.is_ip and url.host not in hosts and len(hosts) < MAX_LINK_HOSTS:
            hosts[url.host] = url.url
    for host, link in hosts.items():
        found = index.check(host)
        if found is None:
            continue
        factor = _factor(found) * (0.5 if registrable_domain(host) in flagged else 1.0)
        kind = "own_domain" if found.kind == "own" else "partner"
        if kind not in best or factor > best[kind][0]:
            best[kind] = (factor, found, link)
    return [context.signal(f"url.lookalike_{kind}", _describe(found, "link to"), factor, **_evidence(found),
                           url=link[:300])
            for kind, (factor, found, link) in sorted(best.items())]


def analyze(message: Message, context: Context) -> list[Signal]:
    if not context.org.domains and not context.org.partners:
        return []  # nothing to protect
    signals, flagged = _sender_signals(message, context)
    return signals + _link_signals(message, context, flagged)
