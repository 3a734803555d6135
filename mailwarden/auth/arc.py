"""ARC (RFC 8617) chain validation through dkimpy, with key lookups on Mailwarden's resolver.

    validate_chain(raw, resolver) -> ArcResult(result, sealers, instances, reason, latest_results)

``result`` is ``none`` (no ARC sets), ``pass`` (every seal and the newest message signature verify),
``fail``, or ``temperror`` (a key lookup failed). ``sealers`` are the ARC-Seal domains, newest first;
``latest_results`` is what the newest sealer recorded when it received the message (its
ARC-Authentication-Results), which is what a trusted sealer vouches for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dkim

from mailwarden.auth.dkim import _LOGGER, MIN_RSA_BITS, DnsTemporaryError, KeyLookup
from mailwarden.authresults import AuthResults, parse_authentication_results
from mailwarden.resolver import Resolver

MAX_INSTANCES = 50  # RFC 8617 section 4.2.1
_INSTANCE_TAG = re.compile(r"^\s*i\s*=\s*\d+\s*;", re.IGNORECASE)


@dataclass(frozen=True)
class ArcResult:
    result: str
    sealers: tuple[str, ...] = ()
    instances: int = 0
    reason: str = ""
    latest_results: AuthResults | None = None

    def to_dict(self) -> dict[str, object]:
        return {"result": self.result, "sealers": list(self.sealers), "instances": self.instances,
                "reason": self.reason}


def _head(raw: bytes) -> bytes:
    return raw.split(b"\n\n", 1)[0] if b"\r\n\r\n" not in raw else raw.split(b"\r\n\r\n", 1)[0]


def has_arc_headers(raw: bytes) -> bool:
    return b"arc-seal:" in _head(raw).lower()


def seal_keys(raw: bytes) -> list[str]:
    """Key names of the ARC-Seal and ARC-Message-Signature headers (for prefetching)."""
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", _head(raw))
    names = []
    for line in unfolded.splitlines():
        lower = line.lower()
        if lower.startswith((b"arc-seal:", b"arc-message-signature:")):
            domain = re.search(rb"(?:^|;)\s*d\s*=\s*([^;\s]+)", line.split(b":", 1)[1])
            selector = re.search(rb"(?:^|;)\s*s\s*=\s*([^;\s]+)", line.split(b":", 1)[1])
            if domain and selector:
                names.append(f"{selector.group(1).decode('ascii', 'replace')}._domainkey."
                             f"{domain.group(1).decode('ascii', 'replace')}".lower())
    return names[: 2 * MAX_INSTANCES]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    return str(value or "").strip()


def validate_chain(raw: bytes, resolver: Resolver) -> ArcResult:
    if not has_arc_headers(raw):
        return ArcResult("none", reason="not ARC-sealed")
    seals = len(re.findall(rb"(?im)^arc-seal:", _head(raw)))
    if seals > MAX_INSTANCES:  # refuse before verifying: each set costs DNS lookups and signature checks
        return ArcResult("fail", reason=f"{seals} ARC-Seal headers, more than {MAX_INSTANCES}")
    lookup = KeyLookup(resolver)
    try:
        chain = dkim.ARC(raw, logger=_LOGGER, minkey=MIN_RSA_BITS)
        cv, sets, reason = chain.verify(dnsfunc=lookup)
    except DnsTemporaryError as exc:
        return ArcResult("temperror", reason=str(exc))
    except dkim.DKIMException as exc:
        return ArcResult("fail", reason=str(exc)[:160])
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # dkimpy on very broken input
        return ArcResult("fail", reason=f"{type(exc).__name__}: {str(exc)[:120]}")
    sealers = tuple(_text(s.get("as-domain")).lower() for s in sets if s.get("as-domain"))
    latest = None
    if sets and sets[0].get("aar-value"):
        latest = parse_authentication_results(_INSTANCE_TAG.sub("", _text(sets[0]["aar-value"]), count=1))
    instances = max((int(s.get("instance", 0)) for s in sets), default=0)
    if instances > MAX_INSTANCES:
        return ArcResult("fail", sealers, instances, f"more than {MAX_INSTANCES} ARC sets", latest)
    result = "pass" if cv == dkim.CV_Pass else "none" if cv == dkim.CV_None else "fail"
    return ArcResult(result, sealers, instances, _text(reason), latest)
