"""URLs found in mail: extraction from text, normalisation, registrable domains.

Nothing here fetches anything. Registrable domains come from the Public Suffix List shipped in the
``publicsuffixlist`` package (private section included, so ``x.blob.core.windows.net`` is its own site).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import idna
from publicsuffixlist import PublicSuffixList

_PSL = PublicSuffixList()
_ICANN_PSL = PublicSuffixList(only_icann=True)

# Scheme URLs and bare www. hosts in running text; stops at whitespace, quotes and angle brackets.
URL_IN_TEXT = re.compile(r"""(?:(?:https?|hxxps?)://|www\.)[^\s<>"'`{}|\\^\[\]]+""", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:!?)]}>'\""


@dataclass(frozen=True)
class Url:
    """One link as the reader meets it, with the host normalised for analysis."""

    raw: str
    url: str
    scheme: str
    host: str  # ASCII (punycode) form, lower case
    host_unicode: str
    registrable_domain: str
    path: str
    origin: str  # text | href | form | area | attachment:<name>
    anchor_text: str = ""
    is_ip: bool = False
    has_userinfo: bool = False
    port: int | None = None


# No DNS name is longer; longer "hosts" are kept as given, not converted or cached (IDNA is slow on them).
MAX_HOST_CHARS = 253


def registrable_domain(host: str) -> str:
    """The registrable domain (eTLD+1) of an ASCII host name; the host itself if it has none."""
    host = host.lower().rstrip(".")
    if len(host) > MAX_HOST_CHARS:
        return host
    return _registrable_domain(host)


@lru_cache(maxsize=65536)
def _registrable_domain(host: str) -> str:
    if not host or is_ip_literal(host):
        return host
    found = _PSL.privatesuffix(host)
    return found or host


@lru_cache(maxsize=65536)
def organizational_domain(host: str) -> str:
    """The ICANN registrable domain (used where DMARC's organisational domain is meant)."""
    host = host.lower().rstrip(".")
    if not host or is_ip_literal(host):
        return host
    return _ICANN_PSL.privatesuffix(host) or host


@lru_cache(maxsize=65536)
def public_suffix(host: str) -> str:
    return _ICANN_PSL.publicsuffix(host.lower().rstrip(".")) or ""


# Names reserved for private networks and documentation (RFC 2606, 6761, 6762, ICANN's .internal): mail from
# such a name is internal or a test, not a forgery of a public domain.
SPECIAL_USE_TLDS = frozenset({"local", "localhost", "localdomain", "internal", "lan", "home", "corp", "intranet",
                              "test", "example", "invalid", "arpa", "onion"})


@lru_cache(maxsize=65536)
def has_unknown_tld(host: str) -> bool:
    """True if the host's top-level domain exists nowhere in the DNS root (``.xfcgj``): nobody can send from it."""
    host = host.lower().rstrip(".")
    if "." not in host or is_ip_literal(host) or host.rsplit(".", 1)[1] in SPECIAL_USE_TLDS:
        return False
    return _ICANN_PSL.publicsuffix(host, accept_unknown=False) is None


def is_ip_literal(host: str) -> bool:
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _looks_like_numeric_ipv4(host)
    return True


def _looks_like_numeric_ipv4(host: str) -> bool:
    # Browsers accept 0x7f.1, 3232235777 and octal forms; phishers use them to hide an IP.
    return bool(re.fullmatch(r"(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}", host, re.IGNORECASE)) and \
        not re.fullmatch(r"\d{1,3}", host)


def to_ascii_host(host: str) -> tuple[str, str]:
    """(ASCII, Unicode) forms of a host name; invalid IDNA is kept as given, lower-cased."""
    host = host.strip().strip(".").lower()
    if len(host) > MAX_HOST_CHARS:
        return host, host
    return _to_ascii_host(host)


@lru_cache(maxsize=65536)
def _to_ascii_host(host: str) -> tuple[str, str]:
    if not host:
        return "", ""
    if host.isascii():
        if "xn--" not in host:
            return host, host
        try:
            return host, idna.decode(host)
        except (idna.IDNAError, UnicodeError, ValueError):
            return host, host
    try:
        return idna.encode(host, uts46=True).decode("ascii"), host
    except (idna.IDNAError, UnicodeError, ValueError):
        try:
            return host.encode("idna").decode("ascii"), host
        except UnicodeError:
            return host, host


def normalize(raw: str, origin: str, anchor_text: str = "") -> Url | None:
    """Parse and normalise one URL; None for what is not a web link (mailto:, cid:, fragments)."""
    candidate = raw.strip().strip("\x00")
    if not candidate:
        return None
    lowered = candidate.lower()
    if lowered.startswith("hxxp"):
        candidate = "http" + candidate[4:]
    elif lowered.startswith("www."):
        candidate = "http://" + candidate
    elif lowered.startswith("//"):
        candidate = "http:" + candidate
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    netloc_host = parts.hostname or ""
    host = unquote(netloc_host)
    ascii_host, unicode_host = to_ascii_host(host)
    if not ascii_host:
        return None
    path = unquote(parts.path or "/")
    port_text = f":{port}" if port and port not in (80, 443) else ""
    url_host = f"[{ascii_host}]" if ":" in ascii_host else ascii_host  # an IPv6 literal keeps its brackets
    url = f"{scheme}://{url_host}{port_text}{parts.path or '/'}"
    if parts.query:
        url += "?" + parts.query
    ip = is_ip_literal(ascii_host)
    return Url(
        raw=raw[:2048],
        url=url[:2048],
        scheme=scheme,
        host=ascii_host,
        host_unicode=unicode_host,
        registrable_domain=registrable_domain(ascii_host),
        path=path[:1024],
        origin=origin,
        anchor_text=" ".join(anchor_text.split())[:300],
        is_ip=ip,
        has_userinfo="@" in parts.netloc,
        port=port,
    )


def find_in_text(text: str, origin: str, limit: int = 500) -> list[Url]:
    """Every web link written out in running text."""
    found: list[Url] = []
    for match in URL_IN_TEXT.finditer(text):
        raw = match.group(0).rstrip(_TRAILING_PUNCT)
        url = normalize(raw, origin)
        if url:
            found.append(url)
            if len(found) >= limit:
                break
    return found
