"""DMARC (RFC 7489): does an authenticated identifier align with the From domain, and what policy applies?

    evaluate(resolver, from_domain, spf, dkim, message_key) -> DmarcResult(result, policy, domain, ...)

Record discovery (section 6.6.3): ``_dmarc.<From domain>``, then ``_dmarc.<organisational domain>``
(the ICANN section of the Public Suffix List). Only TXT records that begin ``v=DMARC1`` count.

Results (RFC 8601 section 2.7.4):
- ``pass``: an SPF pass or a DKIM pass whose domain aligns with the From domain (``aspf``/``adkim``:
  relaxed = same organisational domain, strict = the same domain);
- ``fail``: a policy was found and nothing aligned passed; ``policy`` is what applies to the message:
  ``sp`` for a subdomain whose record was found at the organisational domain, else ``p``, and for a
  message outside the ``pct`` sample the next milder policy (reject -> quarantine -> none);
- ``none``: no record (or no From domain);
- ``temperror``: the record lookup failed or timed out, or nothing passed while an aligned identifier
  had a temporary error (a retry could pass);
- ``permerror``: more than one DMARC record, or a record without a valid ``p`` (or with an invalid
  ``sp``) and no valid ``rua`` (section 6.6.3 would apply no policy; section 11.2 names that a permerror).
  A record without a valid ``p`` but with a valid ``rua`` is read as ``p=none`` (section 6.6.3).
Invalid values of the other tags (``adkim``, ``aspf``, ``pct``) fall back to their defaults (section 6.3).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mailwarden.auth.dkim import DkimResult
from mailwarden.auth.spf import SpfResult
from mailwarden.resolver import Resolver
from mailwarden.urls import organizational_domain

POLICIES = ("none", "quarantine", "reject")
_MILDER = {"reject": "quarantine", "quarantine": "none", "none": "none"}
_VERSION = re.compile(r"^v\s*=\s*DMARC1\s*(;|$)")
_URI = re.compile(r"^[a-z][a-z0-9+.-]*:[^\s!]+(?:![0-9]+[kmgt]?)?$", re.IGNORECASE)


class DmarcRecordError(ValueError):
    """Raised when a DMARC record cannot give a policy (no valid p, invalid sp, v not first)."""


@dataclass(frozen=True)
class DmarcRecord:
    policy: str
    subdomain_policy: str | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rua: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # tags that were invalid and replaced by their default


def parse_record(text: str) -> DmarcRecord:
    """Parse a DMARC TXT record; raises DmarcRecordError when it gives no usable policy."""
    if not _VERSION.match(text):
        raise DmarcRecordError("the record does not begin with v=DMARC1")
    tags: dict[str, str] = {}
    for chunk in text.split(";")[1:]:
        name, sep, value = chunk.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            continue  # empty or malformed parts are ignored
        tags.setdefault(name, value.strip())
    notes: list[str] = []
    rua = tuple(u.strip() for u in tags.get("rua", "").split(",") if _URI.match(u.strip()))
    policy = tags.get("p", "").lower()
    if policy not in POLICIES:
        if not rua:
            raise DmarcRecordError(f"invalid or missing p= ({tags.get('p', '')!r})")
        notes.append(f"p={tags.get('p', '')!r} read as p=none because rua= is given")
        policy = "none"
    subdomain_policy = tags.get("sp", "").lower() or None
    if subdomain_policy is not None and subdomain_policy not in POLICIES:
        if not rua:
            raise DmarcRecordError(f"invalid sp= ({tags['sp']!r})")
        notes.append(f"sp={tags['sp']!r} ignored")
        subdomain_policy = None

    def mode(tag: str) -> str:
        value = tags.get(tag, "r").lower()
        if value not in ("r", "s"):
            notes.append(f"{tag}={tags[tag]!r} read as r")
            return "r"
        return value

    pct_text = tags.get("pct")
    pct = 100
    if pct_text is not None:
        if pct_text.isdigit() and int(pct_text) <= 100:
            pct = int(pct_text)
        else:
            notes.append(f"pct={pct_text!r} read as 100")
    return DmarcRecord(policy, subdomain_policy, mode("adkim"), mode("aspf"), pct, rua, tuple(notes))


@dataclass(frozen=True)
class DmarcResult:
    result: str
    domain: str  # the RFC5322.From domain
    policy: str = "none"  # the policy that applies to this message (after sp and pct)
    published_policy: str = ""  # p (or sp) as the record says, before pct
    record_domain: str = ""  # where the record was found
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    spf_aligned: bool = False
    dkim_aligned: bool = False
    aligned_domain: str = ""
    sampled_out: bool = False  # failed, but outside the pct sample: the milder policy applies
    reason: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def alignment(self) -> dict[str, object]:
        return {"spf": self.spf_aligned, "dkim": self.dkim_aligned, "aspf": _MODE[self.aspf],
                "adkim": _MODE[self.adkim], "domain": self.aligned_domain}

    def to_dict(self) -> dict[str, object]:
        return {"result": self.result, "policy": self.policy, "domain": self.domain,
                "alignment": self.alignment, "published_policy": self.published_policy,
                "record_domain": self.record_domain, "pct": self.pct, "sampled_out": self.sampled_out,
                "reason": self.reason}


_MODE = {"r": "relaxed", "s": "strict"}


def aligned(domain: str, from_domain: str, mode: str) -> bool:
    domain, from_domain = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not domain or not from_domain:
        return False
    if mode == "s":
        return domain == from_domain
    return organizational_domain(domain) == organizational_domain(from_domain)


def record_names(from_domain: str) -> list[str]:
    """The names a DMARC check for this From domain may ask (for prefetching)."""
    from_domain = from_domain.lower().rstrip(".")
    if not from_domain:
        return []
    org = organizational_domain(from_domain)
    return [f"_dmarc.{from_domain}"] + ([f"_dmarc.{org}"] if org != from_domain else [])


def _discover(resolver: Resolver, domain: str) -> tuple[str, str]:
    """("record", text) | ("none", reason) | ("temperror", reason) | ("permerror", reason)."""
    name = f"_dmarc.{domain}"
    answer = resolver.query(name, "TXT")
    if answer.status in ("SERVFAIL", "TIMEOUT"):
        return "temperror", f"DNS {answer.status} for {name}"
    records = [r.strip() for r in answer.records if _VERSION.match(r.strip())]
    if not records:
        return "none", f"no DMARC record at {name}"
    if len(records) > 1:
        return "permerror", f"{len(records)} DMARC records at {name}"
    return "record", records[0]


def in_sample(message_key: str, pct: int) -> bool:
    """Whether this message is in the pct% the policy applies to (the same message always decides alike)."""
    if pct >= 100:
        return True
    if pct <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(message_key.encode("utf-8", "replace")).digest()[:4], "big") % 100
    return bucket < pct


def evaluate(resolver: Resolver, from_domain: str, spf: SpfResult | None, dkim: Sequence[DkimResult],
             message_key: str = "") -> DmarcResult:
    from_domain = from_domain.lower().rstrip(".")
    if not from_domain:
        return DmarcResult("none", "", reason="no RFC5322.From domain")
    org = organizational_domain(from_domain)
    found_at = from_domain
    status, text = _discover(resolver, from_domain)
    if status == "none" and org != from_domain:
        found_at = org
        status, text = _discover(resolver, org)
    if status != "record":
        return DmarcResult(status, from_domain, reason=text, record_domain=found_at if status != "none" else "")
    try:
        record = parse_record(text)
    except DmarcRecordError as exc:
        return DmarcResult("permerror", from_domain, record_domain=found_at, reason=f"_dmarc.{found_at}: {exc}")
    published = record.policy
    if found_at != from_domain and record.subdomain_policy is not None:
        published = record.subdomain_policy
    base = DmarcResult("none", from_domain, published, published, found_at, record.adkim, record.aspf, record.pct,
                       notes=record.notes)
    dkim_pass = [d for d in dkim if d.result == "pass" and aligned(d.domain, from_domain, record.adkim)]
    spf_pass = spf is not None and spf.result == "pass" and aligned(spf.domain, from_domain, record.aspf)
    if dkim_pass or spf_pass:
        domain = dkim_pass[0].domain if dkim_pass else spf.domain if spf else ""
        reason = f"aligned {'DKIM' if dkim_pass else 'SPF'} pass for {domain}"
        return replace(base, result="pass", spf_aligned=spf_pass, dkim_aligned=bool(dkim_pass),
                        aligned_domain=domain, reason=reason)
    temporary = [d.domain for d in dkim if d.result == "temperror" and aligned(d.domain, from_domain, record.adkim)]
    if spf is not None and spf.result == "temperror" and aligned(spf.domain, from_domain, record.aspf):
        temporary.append(spf.domain)
    if temporary:
        return replace(base, result="temperror", reason=f"temporary error for aligned {', '.join(temporary)}")
    sampled = in_sample(message_key, record.pct)
    policy = published if sampled else _MILDER[published]
    return replace(base, result="fail", policy=policy, sampled_out=not sampled,
                    reason=f"no aligned SPF or DKIM pass for {from_domain}")
