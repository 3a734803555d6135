"""Indicator types, normalised values, severity, confidence decay and STIX patterns (pure functions).

    normalise("domain", "WWW.Évil.example.") -> "www.xn--vil-bma.example"
    normalise("url", "hxxp://Evil.example/a#x") -> "http://evil.example/a"
    stix_pattern("file-sha256", h) -> "[file:hashes.'SHA-256' = '...']"

Values are stored the way the scan sees them (``mailwarden.urls`` for links and hosts), so that a stored
block matches the next message exactly. An indicator lives from ``valid_from`` to ``valid_until``; its
confidence decays linearly to half its value on the way (``current_confidence``), and after
``valid_until`` it is neither published nor blocking.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime, timedelta
from hashlib import sha256

from mailwarden.errors import MailwardenError
from mailwarden.urls import is_ip_literal, normalize, to_ascii_host

TYPES = ("domain", "url", "ipv4", "ipv6", "email-addr", "file-sha256")
ACTIONS = ("block", "monitor")
SEVERITIES = ("low", "medium", "high", "critical")
MAX_VALUE_CHARS = 2048

# How long an indicator stays valid when nobody says: addresses change hands quickly, files never do.
LIFETIME = {
    "domain": timedelta(days=90),
    "url": timedelta(days=30),
    "ipv4": timedelta(days=14),
    "ipv6": timedelta(days=14),
    "email-addr": timedelta(days=60),
    "file-sha256": timedelta(days=365),
}

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_STIX_NAMESPACE = uuid.UUID("7c6a3e3c-5d1f-4e0b-9f0a-6d61696c7764")


class IndicatorError(MailwardenError):
    """Raised when an indicator's type or value is not valid (the message says which and why)."""


def normalise_domain(value: str) -> str:
    """A host name in ASCII (punycode), lower case, no trailing dot; at least two labels."""
    text = value.strip().rstrip(".").lower()
    if text.startswith("*."):
        text = text[2:]
    ascii_host, _ = to_ascii_host(text)
    labels = ascii_host.split(".")
    if (not ascii_host or len(ascii_host) > 253 or len(labels) < 2 or is_ip_literal(ascii_host)
            or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit()):
        raise IndicatorError(f"not a domain name: {value[:100]!r}")
    return ascii_host


def normalise_url(value: str) -> str:
    """An http(s) URL the way the scan writes links (scheme and host lower case, no fragment)."""
    text = value.strip()
    if "://" not in text[:12] and not text.lower().startswith(("www.", "hxxp")):
        text = "http://" + text
    found = normalize(text, "intel")
    if found is None or len(found.url) > MAX_VALUE_CHARS or any(c.isspace() for c in found.url):
        raise IndicatorError(f"not an http(s) URL: {value[:100]!r}")
    if not found.is_ip:
        normalise_domain(found.host)
    return found.url


def normalise_ip(value: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError as exc:
        raise IndicatorError(f"not an IPv{version} address: {value[:100]!r}") from exc
    if address.version != version:
        raise IndicatorError(f"not an IPv{version} address: {value[:100]!r}")
    return address.compressed


def normalise_email(value: str) -> str:
    local, at, domain = value.strip().lower().rpartition("@")
    if not at or not local or len(local) > 64 or any(c.isspace() or c in "<>\"(),;:[]\\" for c in local):
        raise IndicatorError(f"not an email address: {value[:100]!r}")
    return f"{local}@{normalise_domain(domain)}"


def normalise_sha256(value: str) -> str:
    text = value.strip().lower()
    if not _SHA256.fullmatch(text):
        raise IndicatorError(f"not a SHA-256 hash (64 hex digits): {value[:100]!r}")
    return text


def normalise(kind: str, value: str) -> str:
    """The stored form of ``value`` as a ``kind`` indicator; IndicatorError when it is not one."""
    if len(value) > MAX_VALUE_CHARS:
        raise IndicatorError(f"value longer than {MAX_VALUE_CHARS} characters")
    if kind == "domain":
        return normalise_domain(value)
    if kind == "url":
        return normalise_url(value)
    if kind == "ipv4":
        return normalise_ip(value, 4)
    if kind == "ipv6":
        return normalise_ip(value, 6)
    if kind == "email-addr":
        return normalise_email(value)
    if kind == "file-sha256":
        return normalise_sha256(value)
    raise IndicatorError(f"unknown indicator type {kind!r}: one of {', '.join(TYPES)}")


def default_severity(confidence: int, action: str) -> str:
    if action == "block":
        return "critical" if confidence >= 90 else "high"
    return "high" if confidence >= 80 else "medium" if confidence >= 50 else "low"


def default_valid_until(kind: str, now: datetime) -> datetime:
    return now + LIFETIME[kind]


def current_confidence(confidence: int, valid_from: datetime, valid_until: datetime | None, now: datetime) -> int:
    """The confidence now: linear decay to half of ``confidence`` at ``valid_until``; 0 once expired."""
    if valid_until is None:
        return confidence
    if now >= valid_until:
        return 0
    span = (valid_until - valid_from).total_seconds()
    left = (valid_until - now).total_seconds()
    fraction = 1.0 if span <= 0 else min(1.0, left / span)
    return round(confidence * (0.5 + 0.5 * fraction))


def stable_uuid(*parts: str) -> str:
    """A UUID derived from ``parts``, with version-4 bits (STIX asks v4 for domain objects): same parts, same id."""
    digest = bytearray(sha256("\x1f".join(parts).encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


def stix_id(kind: str, value: str) -> str:
    """The STIX id of the indicator for (kind, value): the same on every node and after every rebuild."""
    return f"indicator--{stable_uuid('indicator', kind, value)}"


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


STIX_PATHS = {
    "domain": "domain-name:value",
    "url": "url:value",
    "ipv4": "ipv4-addr:value",
    "ipv6": "ipv6-addr:value",
    "email-addr": "email-addr:value",
    "file-sha256": "file:hashes.'SHA-256'",
}


def stix_pattern(kind: str, value: str) -> str:
    return f"[{STIX_PATHS[kind]} = {_quoted(value)}]"


_PATTERN_TERM = re.compile(r"""\s*([a-z0-9-]+:[a-z0-9_.'-]+(?:\.'[^']+')?)\s*=\s*'((?:[^'\\]|\\.)*)'\s*""",
                           re.IGNORECASE)
_TYPES_BY_PATH = {
    "domain-name:value": "domain", "url:value": "url", "ipv4-addr:value": "ipv4", "ipv6-addr:value": "ipv6",
    "email-addr:value": "email-addr", "file:hashes.'sha-256'": "file-sha256", "file:hashes.sha256": "file-sha256",
    "file:hashes.'sha256'": "file-sha256", "email-message:from_ref.value": "email-addr",
}


def indicators_in_pattern(pattern: str) -> list[tuple[str, str]]:
    """The (type, value) pairs of a simple STIX pattern: comparisons with ``=`` joined by OR, in one or more
    brackets (``[a = 'x' OR b = 'y'] OR [c = 'z']``). Anything else (AND, FOLLOWEDBY, other operators) gives []."""
    text = pattern.strip()
    found: list[tuple[str, str]] = []
    for group in re.split(r"\]\s*OR\s*\[", text.strip("[] \t")):
        for term in re.split(r"\s+OR\s+", group):
            match = _PATTERN_TERM.fullmatch(term)
            if match is None:
                return []
            kind = _TYPES_BY_PATH.get(match.group(1).lower())
            if kind is None:
                continue
            raw = re.sub(r"\\(.)", r"\1", match.group(2))
            try:
                found.append((kind, normalise(kind, raw)))
            except IndicatorError:
                continue
    return found
