"""DNS blocklists: the client IP against IP zones, sender and link domains against domain zones.

    ip_query_name("192.0.2.1", "bl.example")     -> "1.2.0.192.bl.example"
    ip_query_name("2001:db8::1", "bl.example")   -> "1.0.0.0.....8.b.d.0.1.0.0.2.bl.example" (nibbles)
    lookup(resolver, zones, client_ip=..., sender_domains=..., link_domains=...) -> (DnsblHit, ...)

A name is listed when its A records hold return codes in 127.0.0.0/8. Codes in 127.255.255.0/24 are the
list's own error answers (refused, rate limited) and never a listing. A zone with ``codes`` counts only
those codes, each with the meaning the operator gave it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from mailwarden.auth.spf import client_address
from mailwarden.config import DnsblZone
from mailwarden.resolver import Resolver

_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_LIST_ERRORS = ipaddress.ip_network("127.255.255.0/24")


@dataclass(frozen=True)
class DnsblHit:
    zone: str
    target: str  # client_ip | sender | links
    value: str  # the IP address or domain that is listed
    query: str
    codes: tuple[str, ...]
    meanings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"zone": self.zone, "target": self.target, "value": self.value, "query": self.query,
                "codes": list(self.codes), "meanings": list(self.meanings)}


@dataclass(frozen=True)
class DnsblError:
    zone: str
    query: str
    status: str


def ip_query_name(ip: str, zone: str) -> str | None:
    address = client_address(ip)
    if address is None:
        return None
    if address.version == 4:
        return ".".join(reversed(str(address).split("."))) + "." + zone
    return ".".join(reversed(address.exploded.replace(":", ""))) + "." + zone


def _codes(records: Iterable[str], zone: DnsblZone) -> tuple[tuple[str, ...], tuple[str, ...]]:
    meanings = dict(zone.codes)
    codes, said = [], []
    for record in records:
        try:
            address = ipaddress.ip_address(record)
        except ValueError:
            continue
        if address.version != 4 or address not in _LOOPBACK or address in _LIST_ERRORS:
            continue
        if meanings and record not in meanings:
            continue
        codes.append(record)
        said.append(meanings.get(record, "listed"))
    return tuple(codes), tuple(said)


def listing_codes(records: Iterable[str], zone: DnsblZone) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The answer addresses that mean a listing in ``zone``, and what each means (for async callers)."""
    return _codes(records, zone)


def _ask(resolver: Resolver, zone: DnsblZone, target: str, value: str, name: str,
         hits: list[DnsblHit], errors: list[DnsblError]) -> None:
    answer = resolver.query(name, "A")
    if answer.status in ("SERVFAIL", "TIMEOUT"):
        errors.append(DnsblError(zone.zone, name, answer.status))
        return
    codes, meanings = _codes(answer.records, zone)
    if codes:
        hits.append(DnsblHit(zone.zone, target, value, name, codes, meanings))


def questions(zones: Iterable[DnsblZone], client_ip: str | None, sender_domains: Iterable[str],
              link_domains: Iterable[str]) -> list[tuple[DnsblZone, str, str, str]]:
    """(zone, target, value, query name) for every lookup the configured zones ask for."""
    senders = [d for d in dict.fromkeys(sender_domains) if d]
    links = [d for d in dict.fromkeys(link_domains) if d and d not in senders]
    found = []
    for zone in zones:
        if zone.kind == "ip":
            name = ip_query_name(client_ip, zone.zone) if client_ip else None
            if name:
                found.append((zone, "client_ip", client_ip or "", name))
            continue
        for target, domains in (("sender", senders), ("links", links)):
            if target in zone.targets:
                found.extend((zone, target, d, f"{d}.{zone.zone}") for d in domains)
    return found


def lookup(resolver: Resolver, zones: Iterable[DnsblZone], *, client_ip: str | None = None,
           sender_domains: Iterable[str] = (), link_domains: Iterable[str] = ()
           ) -> tuple[tuple[DnsblHit, ...], tuple[DnsblError, ...]]:
    hits: list[DnsblHit] = []
    errors: list[DnsblError] = []
    for zone, target, value, name in questions(zones, client_ip, sender_domains, link_domains):
        _ask(resolver, zone, target, value, name, hits, errors)
    return tuple(hits), tuple(errors)
