"""Known indicators: senders, domains, URLs, IPs and file hashes the organisation has blocked."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailwarden.message import Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal

NAME = "intel"
SIGNALS = ("intel.blocked_sender", "intel.blocked_domain", "intel.blocked_url", "intel.blocked_ip",
           "intel.blocked_hash")


def analyze(message: Message, context: Context) -> list[Signal]:
    lists = context.intel
    signals: list[Signal] = []
    sender = message.from_
    if sender and sender.email in lists.blocked_senders:
        signals.append(context.signal("intel.blocked_sender", f"sender {sender.email} is blocked", value=sender.email))
    domains = {a.registrable_domain for a in (*message.from_all, *message.reply_to) if a.domain}
    domains |= {u.registrable_domain for u in message.urls}
    for domain in sorted(domains & lists.blocked_domains):
        signals.append(context.signal("intel.blocked_domain", f"{domain} is on the block list", value=domain))
    for url in message.urls:
        if url.url in lists.blocked_urls:
            signals.append(context.signal("intel.blocked_url", f"link {url.url} is on the block list", value=url.url))
    for hop in message.received:
        if hop.ip and hop.ip in lists.blocked_ips:
            signals.append(context.signal("intel.blocked_ip", f"relayed by blocked IP {hop.ip}", value=hop.ip))
    for attachment in message.attachments:
        if attachment.sha256 in lists.blocked_hashes:
            signals.append(context.signal("intel.blocked_hash", f"attachment {attachment.filename} is a known bad file",
                                          value=attachment.sha256))
    return signals
