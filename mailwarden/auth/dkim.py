"""DKIM (RFC 6376) verification through dkimpy, with key lookups on Mailwarden's resolver.

    verify_signatures(raw, resolver) -> (DkimResult(result, domain, selector, algorithm, reason), ...)

Each DKIM-Signature is verified on its own (rsa-sha256 and ed25519-sha256). Results follow RFC 8601:
``pass``; ``fail`` (the signature or the body hash does not verify); ``permerror`` (a malformed signature,
no key at the selector, an unusable or too small key); ``temperror`` (the key lookup failed or timed out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dkim
from dkim.util import InvalidTagValueList, parse_tag_value

from mailwarden.resolver import DnsAnswer, Resolver

MAX_SIGNATURES = 8
MIN_RSA_BITS = 1024

_LOGGER = logging.getLogger("mailwarden.auth.dkim")
_LOGGER.addHandler(logging.NullHandler())
_LOGGER.propagate = False  # dkimpy logs every failure at error level; the result carries the reason


class DnsTemporaryError(Exception):
    """Raised inside a dkimpy verification when a key lookup gets SERVFAIL or no answer in time."""

    def __init__(self, name: str, status: str) -> None:
        super().__init__(f"DNS {status} for {name}")
        self.name = name
        self.status = status


@dataclass(frozen=True)
class DkimResult:
    result: str
    domain: str
    selector: str
    algorithm: str = ""
    reason: str = ""
    identity: str = ""
    signature_prefix: str = ""  # the first characters of b=, to tell signatures apart (RFC 6008)

    def to_dict(self) -> dict[str, str]:
        return {"result": self.result, "domain": self.domain, "selector": self.selector,
                "algorithm": self.algorithm, "reason": self.reason}


class KeyLookup:
    """A dkimpy ``dnsfunc`` that asks our resolver and remembers what it found for each key name."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.answers: dict[str, DnsAnswer] = {}

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        text = (name.decode("ascii", "replace") if isinstance(name, bytes) else name).rstrip(".").lower()
        answer = self.resolver.query(text, "TXT")
        self.answers[text] = answer
        if answer.status in ("SERVFAIL", "TIMEOUT"):
            raise DnsTemporaryError(text, answer.status)
        if not answer.records:
            return None
        chosen = next((r for r in answer.records if "p=" in r), answer.records[0])
        return chosen.encode("utf-8", "surrogateescape")

    def problem(self, name: str) -> str:
        """Why a key could not be used, or "" when it looked usable."""
        answer = self.answers.get(name.rstrip(".").lower())
        if answer is None:
            return ""
        if not answer.records:
            return f"no key at {name} ({answer.status})"
        record = next((r for r in answer.records if "p=" in r), answer.records[0])
        try:
            _, bits, kind, _ = dkim.evaluate_pk(name.encode("ascii", "replace"),
                                                record.encode("utf-8", "surrogateescape"))
        except (dkim.DKIMException, ValueError, TypeError, KeyError) as exc:
            return f"unusable key at {name}: {str(exc)[:120]}"
        if kind == b"rsa" and bits is not None and bits < MIN_RSA_BITS:
            return f"key at {name} has {bits} bits, fewer than {MIN_RSA_BITS}"
        return ""


def _tags(value: bytes) -> dict[bytes, bytes]:
    try:
        return dict(parse_tag_value(value))
    except (InvalidTagValueList, ValueError, TypeError):
        return {}


def _text(value: bytes | None) -> str:
    return (value or b"").decode("ascii", "replace").strip()


def signature_keys(raw: bytes, limit: int = MAX_SIGNATURES) -> list[str]:
    """The key names (``selector._domainkey.domain``) the DKIM signatures of a message point at."""
    names = []
    for header in _signature_headers(raw)[:limit]:
        tags = _tags(header)
        selector, domain = _text(tags.get(b"s")).lower(), _text(tags.get(b"d")).lower()
        if selector and domain:
            names.append(f"{selector}._domainkey.{domain}")
    return names


def _signature_headers(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    found: list[bytes] = []
    current: bytes | None = None
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t") and current is not None:
            current += line
            continue
        if current is not None:
            found.append(current)
            current = None
        if line[:15].lower() == b"dkim-signature:":
            current = line[15:]
    if current is not None:
        found.append(current)
    return found


def verify_signatures(raw: bytes, resolver: Resolver, limit: int = MAX_SIGNATURES,
                      parsed: dkim.DKIM | None = None) -> tuple[DkimResult, ...]:
    """Verify each DKIM-Signature (at most ``limit``); an unsigned message gives no results."""
    headers = _signature_headers(raw)
    if not headers:
        return ()
    try:
        verifier = parsed or dkim.DKIM(raw, logger=_LOGGER, minkey=MIN_RSA_BITS)
    except dkim.DKIMException as exc:
        return (DkimResult("permerror", "", "", reason=f"message cannot be read: {str(exc)[:120]}"),)
    results = []
    for index, header in enumerate(headers[:limit]):
        results.append(_verify_one(verifier, index, header, KeyLookup(resolver)))
    return tuple(results)


def _verify_one(verifier: dkim.DKIM, index: int, header: bytes, lookup: KeyLookup) -> DkimResult:
    tags = _tags(header)
    domain, selector = _text(tags.get(b"d")).lower(), _text(tags.get(b"s")).lower()
    algorithm, identity = _text(tags.get(b"a")).lower(), _text(tags.get(b"i"))
    prefix = "".join(_text(tags.get(b"b")).split())[:8]

    def result(outcome: str, reason: str) -> DkimResult:
        return DkimResult(outcome, domain, selector, algorithm, reason, identity, prefix)

    try:
        verified = verifier.verify(idx=index, dnsfunc=lookup)
    except DnsTemporaryError as exc:
        return result("temperror", str(exc))
    except dkim.ValidationError as exc:
        text = str(exc)
        outcome = "fail" if "body hash mismatch" in text else "permerror"
        return result(outcome, "body hash mismatch" if outcome == "fail" else text[:160])
    except dkim.DKIMException as exc:
        return result("permerror", str(exc)[:160])
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # dkimpy on very broken input
        return result("permerror", f"{type(exc).__name__}: {str(exc)[:120]}")
    if verified:
        return result("pass", "")
    problem = lookup.problem(f"{selector}._domainkey.{domain}")
    if problem:
        return result("permerror", problem)
    return result("fail", "signature does not verify")
