"""A host name taken apart the way a lookalike is built: subdomains, the label someone registered, its suffix.

    split_host("ledgerline.io.account-verify.net")
      -> DomainName(label="account-verify", suffix="net", subdomains=("ledgerline", "io"), ...)

Suffixes come from the Public Suffix List (``publicsuffixlist``), private section included, in three kinds:
``icann`` (com, co.uk), ``registry`` (second-level names sold to anyone, uk.com, us.com: a swap to them is a
TLD swap) and ``platform`` (a shared service where each customer gets a name: zendesk.com, blob.core.windows.net,
plus the platforms listed in ``data/lookalikes.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from mailwarden.domains.data import platform_suffixes
from mailwarden.urls import MAX_HOST_CHARS, is_ip_literal, public_suffix, to_ascii_host

_PSL = PublicSuffixList()


@dataclass(frozen=True, slots=True)
class DomainName:
    host: str  # ASCII (punycode), lower case
    registrable: str  # the label and its suffix
    label: str  # ASCII
    label_unicode: str
    suffix: str
    suffix_kind: str  # icann | registry | platform
    subdomains: tuple[str, ...] = ()  # Unicode, left to right

    @property
    def parents(self) -> list[str]:
        """The host and every domain above it down to the registrable domain."""
        labels = self.host.split(".")
        depth = len(self.subdomains)
        return [".".join(labels[i:]) for i in range(depth + 1)]


def _is_registry_like(suffix: str) -> bool:
    """uk.com, us.com, co.com: two labels, the first a country code or "co"."""
    parts = suffix.split(".")
    return len(parts) == 2 and len(parts[0]) <= 3


def _platform(labels: list[str]) -> str | None:
    platforms = platform_suffixes()
    for i in range(1, len(labels)):
        tail = ".".join(labels[i:])
        if tail in platforms:
            return tail
    return None


def _unicode_labels(ascii_labels: list[str], unicode_host: str) -> list[str]:
    found = unicode_host.split(".")
    if len(found) == len(ascii_labels):
        return found
    return [to_ascii_host(label)[1] for label in ascii_labels]


@lru_cache(maxsize=65536)
def _split(host: str) -> DomainName | None:
    ascii_host, unicode_host = to_ascii_host(host)
    if not ascii_host or "." not in ascii_host:
        return None
    if (ascii_host[-1].isdigit() or ":" in ascii_host) and is_ip_literal(ascii_host):
        return None  # a name ending in letters is never an address
    suffix = _PSL.publicsuffix(ascii_host) or ""
    icann = public_suffix(ascii_host) if "." in suffix else suffix  # private suffixes have two labels or more
    kind = "icann" if suffix == icann else "registry" if _is_registry_like(suffix) else "platform"
    labels = ascii_host.split(".")
    platform = _platform(labels)
    if platform and len(platform) > len(suffix):
        suffix, kind = platform, "platform"
    depth = len(labels) - suffix.count(".") - 2
    if depth < 0 and icann != suffix:  # the platform's own name (github.io, blogspot.com)
        suffix, kind = icann, "icann"
        depth = len(labels) - suffix.count(".") - 2
    if not suffix or depth < 0:
        return None
    names = _unicode_labels(labels, unicode_host)
    return DomainName(
        host=ascii_host,
        registrable=".".join(labels[depth:]),
        label=labels[depth],
        label_unicode=names[depth],
        suffix=suffix,
        suffix_kind=kind,
        subdomains=tuple(names[:depth]),
    )


def split_host(host: str) -> DomainName | None:
    """The parts of a host name (ASCII or Unicode); None for IP literals and names with nothing registrable."""
    host = host.strip().strip(".").lower()
    if not host or len(host) > MAX_HOST_CHARS:
        return None
    return _split(host)
