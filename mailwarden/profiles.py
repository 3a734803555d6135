"""What past mail tells us about each correspondent: per-sender and per-domain profiles.

``Profiles`` is the in-memory view the pipeline reads (no I/O on the hot path); ``observe`` folds one
legitimate message into it. The store (``mailwarden.store``) loads and saves it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailwarden.message import Message
from mailwarden.payments import find_payment_ids

_MAX_SET = 200  # cap on each learned set, so one noisy correspondent cannot grow without bound
_MAX_SET_BY_FIELD = {"thread_ids": 5000, "link_domains": 500}
_MESSAGE_ID = re.compile(r"<[^<>\s]{3,250}>")


@dataclass
class Profile:
    """One correspondent, keyed by address (kind="sender") or registrable domain (kind="domain")."""

    kind: str
    key: str
    first_seen: datetime
    last_seen: datetime
    count: int = 0
    display_names: set[str] = field(default_factory=set)
    sending_domains: set[str] = field(default_factory=set)
    dkim_domains: set[str] = field(default_factory=set)
    spf_domains: set[str] = field(default_factory=set)
    reply_to_domains: set[str] = field(default_factory=set)
    ips: set[str] = field(default_factory=set)
    mailers: set[str] = field(default_factory=set)
    recipients: set[str] = field(default_factory=set)
    payment_ids: set[str] = field(default_factory=set)
    thread_ids: set[str] = field(default_factory=set)
    link_domains: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)
    message_id_styles: set[str] = field(default_factory=set)

    SET_FIELDS = ("display_names", "sending_domains", "dkim_domains", "spf_domains", "reply_to_domains",
                  "ips", "mailers", "recipients", "payment_ids", "thread_ids", "link_domains", "networks",
                  "message_id_styles")

    def merge_sets(self, values: Mapping[str, Iterable[str]]) -> None:
        for name, items in values.items():
            target: set[str] = getattr(self, name)
            cap = _MAX_SET_BY_FIELD.get(name, _MAX_SET)
            for item in items:
                if item and len(target) < cap:
                    target.add(item)


def _now() -> datetime:
    return datetime.now(UTC)


def sending_ips(message: Message) -> set[str]:
    """The public hop that handed the message to us and the one that first submitted it.

    The first public IP from the top is the sender's outbound server; the lowest is usually the
    submitting client (an office network), which is what changes when an account is taken over.
    """
    public = [hop.ip for hop in message.received if hop.ip and not _is_private(hop.ip)]
    return {public[0], public[-1]} if public else set()


def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address belongs to: providers rotate addresses within these."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


_VERSION_TAIL = re.compile(r"[\s/;(\[]*\d.*$|\s*[(\[].*$")


def mailer_family(message: Message) -> str:
    """The mail program without its version: "Microsoft Outlook 16.0" -> "microsoft outlook"."""
    value = (message.header("X-Mailer") or message.header("User-Agent") or "").strip().lower()[:200]
    return _VERSION_TAIL.sub("", value).strip()[:80]


_SHAPE_RUNS = ((re.compile(r"[0-9a-fA-F]{8,}"), "#"), (re.compile(r"[A-Z]+"), "A"), (re.compile(r"[a-z]+"), "a"),
               (re.compile(r"[0-9]+"), "9"))


def message_id_style(message: Message) -> str:
    """The shape of the Message-ID and the site that made it: a mail system's fingerprint."""
    match = _MESSAGE_ID.search(message.message_id)
    if not match:
        return ""
    left, _, right = match.group(0)[1:-1].rpartition("@")
    shape = left
    for pattern, token in _SHAPE_RUNS:
        shape = pattern.sub(token, shape)
    site = ".".join(right.lower().split(".")[-3:])
    return f"{shape[:40]}@{site[:80]}"


def _is_private(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return True
    return addr.is_private or addr.is_loopback or addr.is_link_local


def thread_ids(message: Message) -> set[str]:
    """The message ids a message belongs to: its own, and those it replies to or references."""
    values = [message.message_id, message.header("In-Reply-To") or "", message.header("References") or ""]
    return {m.lower() for value in values for m in _MESSAGE_ID.findall(value)}


def referenced_ids(message: Message) -> set[str]:
    """The earlier messages a reply points at (In-Reply-To and References)."""
    values = [message.header("In-Reply-To") or "", message.header("References") or ""]
    return {m.lower() for value in values for m in _MESSAGE_ID.findall(value)}


def payment_ids(message: Message) -> set[str]:
    texts = [message.text_plain, message.text_html, *(a.text for a in message.attachments)]
    return {str(p) for text in texts if text for p in find_payment_ids(text[:200_000])}


def features(message: Message) -> dict[str, set[str]]:
    """The learnable facts of one message, as sets per profile field."""
    dkim = {r.domain for ar in message.auth for r in ar.method("dkim") if r.result == "pass" and r.domain}
    spf = {r.domain for ar in message.auth for r in ar.method("spf") if r.result == "pass" and r.domain}
    mailer = mailer_family(message)
    ips = sending_ips(message)
    style = message_id_style(message)
    return {
        "display_names": {message.from_.display_name.lower()} if message.from_ and message.from_.display_name
        else set(),
        "sending_domains": {message.from_.domain} if message.from_ and message.from_.domain else set(),
        "dkim_domains": dkim,
        "spf_domains": spf,
        "reply_to_domains": {a.registrable_domain for a in message.reply_to if a.domain},
        "ips": ips,
        "networks": {network_of(ip) for ip in ips},
        "message_id_styles": {style} if style else set(),
        "mailers": {mailer} if mailer else set(),
        "recipients": {a.email for a in (*message.to, *message.cc) if a.email},
        "payment_ids": payment_ids(message),
        "thread_ids": thread_ids(message),
        "link_domains": {u.registrable_domain for u in message.urls},
    }


@dataclass
class Profiles:
    senders: dict[str, Profile] = field(default_factory=dict)
    domains: dict[str, Profile] = field(default_factory=dict)
    _thread_index: dict[str, set[str]] | None = field(default=None, repr=False, compare=False)

    def sender(self, email: str) -> Profile | None:
        return self.senders.get(email.lower())

    def domain(self, domain: str) -> Profile | None:
        return self.domains.get(domain.lower())

    def observe(self, message: Message, seen_at: datetime | None = None) -> list[Profile]:
        """Fold one legitimate message into the sender's and its domain's profiles; return them."""
        if message.from_ is None or not message.from_.domain:
            return []
        when = seen_at or _now()
        facts = features(message)
        self._thread_index = None
        touched = []
        for kind, key, table in (
            ("sender", message.from_.email, self.senders),
            ("domain", message.from_.registrable_domain, self.domains),
        ):
            profile = table.get(key)
            if profile is None:
                profile = table[key] = Profile(kind=kind, key=key, first_seen=when, last_seen=when)
            profile.count += 1
            profile.first_seen = min(profile.first_seen, when)
            profile.last_seen = max(profile.last_seen, when)
            profile.merge_sets(facts)
            touched.append(profile)
        return touched

    def thread_writers(self, ids: set[str]) -> set[str]:
        """Registrable domains that wrote in any of these threads, from the learned domain profiles."""
        if self._thread_index is None:
            index: dict[str, set[str]] = {}
            for profile in self.domains.values():
                for thread in profile.thread_ids:
                    index.setdefault(thread, set()).add(profile.key)
            self._thread_index = index
        return set().union(*(self._thread_index.get(i, set()) for i in ids)) if ids else set()

    def __len__(self) -> int:
        return len(self.senders) + len(self.domains)
