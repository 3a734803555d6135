"""The allow-list: values never published and never blocked, whoever asks.

    allow = AllowList.for_org(org, extra=settings.allowlist)
    allow.reason("url", "https://login.microsoftonline.com/")   -> "microsoftonline.com is a public service"
    allow.reason("url", "https://forms.office.com/r/AbC123")    -> None   (a page of its own: publishable)

What it holds:

* the organisation's own and partner domains: no domain, URL or address under them is ever an indicator;
* big public services (``data/intel_allowlist.txt``), free mail and collaboration services (``freemail.txt``,
  ``services.txt``): their domains and their bare sites are never indicators, but a page on them (a form,
  a shared file: a path or query of its own) and an address at a free-mail service are;
* addresses that are not on the public internet (private, loopback, link-local, multicast) and the
  addresses and hashes the data file lists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

from mailwarden.config import OrgConfig

_NON_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16",
    "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8"))


def _lines(name: str) -> list[str]:
    text = resources.files("mailwarden").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return [line.split("#", 1)[0].strip().lower() for line in text.splitlines() if line.split("#", 1)[0].strip()]


@cache
def public_services() -> frozenset[str]:
    """The data files' domains (public services, free mail, collaboration services)."""
    entries = [*_lines("intel_allowlist.txt"), *_lines("freemail.txt"), *_lines("services.txt")]
    return frozenset(e for e in entries if not _is_address(e) and len(e) != 64)


@cache
def _listed_addresses_and_hashes() -> tuple[frozenset[str], frozenset[str]]:
    entries = _lines("intel_allowlist.txt")
    return frozenset(e for e in entries if _is_address(e)), frozenset(e for e in entries if len(e) == 64)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _self_and_parents(host: str) -> Iterable[str]:
    labels = host.split(".")
    for i in range(len(labels) - 1):
        yield ".".join(labels[i:])


@dataclass(frozen=True)
class AllowList:
    """What is never an indicator (see the module docstring)."""

    protected: frozenset[str] = frozenset()  # own and partner domains, with the names they belong to
    owners: dict[str, str] = field(default_factory=dict)  # domain -> "own" or the partner's name
    services: frozenset[str] = field(default_factory=public_services)
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hashes: frozenset[str] = frozenset()

    @classmethod
    def for_org(cls, org: OrgConfig | None = None, extra: Iterable[str] = ()) -> AllowList:
        owners: dict[str, str] = {}
        if org is not None:
            for domain in org.domains:
                owners[domain.lower().rstrip(".")] = "own"
            for partner in org.partners:
                for domain in partner.domains:
                    owners.setdefault(domain.lower().rstrip("."), partner.name)
        listed, hashes = _listed_addresses_and_hashes()
        extra_entries = [e.strip().lower() for e in extra if e.strip()]
        networks = [ipaddress.ip_network(e, strict=False) for e in (*listed, *extra_entries) if _is_address(e)]
        services = public_services() | {e for e in extra_entries if not _is_address(e) and len(e) != 64}
        return cls(frozenset(owners), owners, frozenset(services), (*_NON_PUBLIC, *networks),
                   hashes | {e for e in extra_entries if len(e) == 64 and not _is_address(e)})

    def owner_of(self, host: str) -> str | None:
        """"own", a partner's name, or None: whose protected domain ``host`` is (or is under)."""
        for candidate in _self_and_parents(host):
            if candidate in self.protected:
                return self.owners.get(candidate, "own")
        return None

    def _service(self, host: str) -> str | None:
        return next((d for d in _self_and_parents(host) if d in self.services), None)

    def _address(self, text: str) -> bool:
        try:
            address = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.networks if network.version == address.version)

    def reason(self, kind: str, value: str) -> str | None:
        """Why (type, value) may not be an indicator, or None when it may. ``value`` is normalised."""
        if kind == "domain":
            owner = self.owner_of(value)
            if owner is not None:
                return f"{value} is {'our own domain' if owner == 'own' else 'a domain of partner ' + owner}"
            service = self._service(value)
            return f"{service} is a public service" if service else None
        if kind == "email-addr":
            domain = value.rpartition("@")[2]
            owner = self.owner_of(domain)
            if owner is not None:
                return f"{domain} is {'our own domain' if owner == 'own' else 'a domain of partner ' + owner}"
            return None
        if kind == "url":
            parts = urlsplit(value)
            host = (parts.hostname or "").lower()
            if self._address(host):
                return f"{host} is not a public address"
            owner = self.owner_of(host)
            if owner is not None:
                return f"{host} is {'our own domain' if owner == 'own' else 'a domain of partner ' + owner}"
            service = self._service(host)
            if service and parts.path in ("", "/") and not parts.query:
                return f"{service} is a public service"
            return None
        if kind in ("ipv4", "ipv6"):
            return f"{value} is not a public address or is allow-listed" if self._address(value) else None
        if kind == "file-sha256":
            return "a harmless file" if value in self.hashes else None
        return None

    def allows(self, kind: str, value: str) -> bool:
        """True when (type, value) may be published and blocked."""
        return self.reason(kind, value) is None
