"""Indicators learned automatically: from the gateway's verdicts and from the lookalike watch.

    learn_from_verdict(connection, result.indicators, org=org, message_ref=ref, ...)   # in the gateway's
                                                                                     # decision transaction
    record_lookalike(connection, domain="acrne-corp.com", lookalike_of="acme-corp.com", ...)   # the watch

A quarantined or rejected message teaches what it carried (sender address, links, their domains, IP hosts,
attachment hashes): each becomes (or refreshes) a ``monitor`` indicator with a confidence from the
message's score, capped per type (a link's domain is weaker evidence than the link), and a sighting
linking it to the message. Learned indicators never block by themselves unless ``[intel] block_learned``
says so; they are published at their confidence, and the allow-list keeps the big public services out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from mailwarden.config import OrgConfig
from mailwarden.intel.allowlist import AllowList
from mailwarden.intel.store import Change, NewIndicator, Sighting, record

if TYPE_CHECKING:
    from mailwarden.pipeline import Indicator, ScanResult

# The most a single verdict makes us trust each kind of value it carried.
CONFIDENCE_CAP = {"email-addr": 90, "url": 80, "file-sha256": 90, "ipv4": 60, "ipv6": 60, "domain": 70}
SOURCE_VERDICT = "gateway"
_ALLOW: dict[int, tuple[OrgConfig, AllowList]] = {}


def allow_list_for(org: OrgConfig | None, extra: Sequence[str] = ()) -> AllowList:
    """The allow-list of an org config, built once per config object."""
    if org is None:
        return AllowList.for_org(None, extra)
    key = id(org)
    found = _ALLOW.get(key)
    if found is None or found[0] is not org:
        if len(_ALLOW) > 64:
            _ALLOW.clear()
        found = (org, AllowList.for_org(org, extra))
        _ALLOW[key] = found
    return found[1]


def _lookalike_tags(result: ScanResult | None, org: OrgConfig | None) -> dict[str, list[str]]:
    """Tags for the domains a scan found imitating a protected one: lookalike-of, partner or own-domain."""
    if result is None:
        return {}
    from mailwarden.domains.watch import lookalikes_in

    tags: dict[str, list[str]] = {}
    for seen in lookalikes_in(result):
        found = [f"lookalike-of:{seen.lookalike_of}"]
        partner = org.partner_for_domain(seen.lookalike_of) if org is not None else None
        if partner is not None:
            found.append(f"partner:{partner.name}")
        elif org is not None and org.is_own_domain(seen.lookalike_of):
            found.append("own-domain")
        tags[seen.domain] = found
    return tags


def learn_from_verdict(connection: Connection, indicators: Iterable[Indicator], *, org: OrgConfig | None,
                       message_ref: str, message_id: str, verdict: str, score: int, now: datetime,
                       result: ScanResult | None = None, block: bool = False,
                       allow: AllowList | None = None) -> list[Change]:
    """Record what a quarantined or rejected message carried, with a sighting each (see the module docstring)."""
    allow = allow or allow_list_for(org)
    signal_tags = [f"signal:{s.id}" for s in (result.signals if result is not None else ()) if s.score > 0][:3]
    lookalikes = _lookalike_tags(result, org)
    changes = []
    sighting = Sighting(message_ref, message_id, SOURCE_VERDICT, verdict)
    for indicator in indicators:
        confidence = max(0, min(CONFIDENCE_CAP.get(indicator.type, 50), score))
        tags = [f"verdict:{verdict}", *signal_tags, *lookalikes.get(indicator.value, [])]
        item = NewIndicator(indicator.type, indicator.value, confidence=confidence,
                            action="block" if block else "monitor", source=SOURCE_VERDICT, tags=tuple(tags),
                            description=f"carried by a message the gateway decided to {verdict}")
        change = record(connection, item, now=now, actor=f"detector:{SOURCE_VERDICT}", mode="learn", allow=allow,
                        sighting=sighting, producer=org.name if org is not None else "")
        if change.indicator is not None:
            changes.append(change)
    return changes


def record_lookalike(connection: Connection, *, domain: str, lookalike_of: str, technique: str, confidence: int,
                     source: str, kind: str, now: datetime, mail_enabled: bool = False, listed: bool = False,
                     partner: str = "") -> Change:
    """A registered (or mailed-from) lookalike as a ``monitor`` indicator, tagged with what it imitates."""
    tags = [f"lookalike-of:{lookalike_of}", f"technique:{technique}"]
    tags += ["own-domain"] if kind == "own" else []
    tags += [f"partner:{partner}"] if partner else []
    tags += ["mx"] if mail_enabled else []
    tags += ["dnsbl"] if listed else []
    item = NewIndicator("domain", domain, confidence=max(0, min(100, confidence)), action="monitor", source=source,
                        tags=tuple(tags), description=f"lookalike of {lookalike_of} ({technique})")
    return record(connection, item, now=now, actor=f"detector:{source}", mode="learn")


def record_spoofing_source(connection: Connection, *, kind: str, value: str, spoofed_domain: str, confidence: int,
                           now: datetime) -> Change:
    """An IP or foreign domain that DMARC reports show sending as one of our domains, as a ``monitor`` indicator."""
    indicator_type = "domain" if kind == "domain" else ("ipv6" if ":" in value else "ipv4")
    item = NewIndicator(indicator_type, value, confidence=max(0, min(100, confidence)), action="monitor",
                        source="dmarc-reports", tags=(f"spoofing:{spoofed_domain}",),
                        description=f"sends as {spoofed_domain} without passing DMARC")
    return record(connection, item, now=now, actor="detector:dmarc-reports", mode="learn")
