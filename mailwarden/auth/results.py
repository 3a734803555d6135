"""Live authentication of one message at the organisation's boundary, and its Authentication-Results.

    verdict = evaluate(raw, Envelope(client_ip, helo, mail_from), resolver, settings)
    verdict.header("mx1.acme-corp.com")   # the RFC 8601 header value Mailwarden writes
    verdict.to_dict()                     # spf, dkim, dmarc, arc, dnsbl (the ``auth check`` output)
    await evaluate_async(raw, envelope, resolver, settings)   # from the gateway's event loop

SPF is checked for the envelope, DKIM and ARC for the bytes as received, DMARC for the From domain
with those results. Nothing upstream wrote is trusted, except what a configured trusted ARC sealer
vouches for: when DMARC fails, the ARC chain passes, and the newest seal is by a trusted sealer whose
ARC-Authentication-Results recorded a DMARC pass (or an aligned SPF or DKIM pass), the failure is
overridden and the verdict names the sealer (``arc_override``).

Independent DNS questions (the SPF record, DKIM and ARC keys, DMARC records, blocklists) are asked at
once before the checks run, so a cold cache costs about one round of DNS timeouts, not their sum.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import TYPE_CHECKING

from mailwarden.auth import dkim as dkim_check
from mailwarden.auth import dmarc as dmarc_check
from mailwarden.auth import dnsbl as dnsbl_check
from mailwarden.auth import spf as spf_check
from mailwarden.auth.arc import ArcResult, seal_keys, validate_chain
from mailwarden.auth.dkim import DkimResult
from mailwarden.auth.dmarc import DmarcResult, aligned
from mailwarden.auth.dnsbl import DnsblError, DnsblHit
from mailwarden.auth.spf import SpfResult
from mailwarden.authresults import AuthResults
from mailwarden.config import AuthSettings
from mailwarden.message import Envelope
from mailwarden.resolver import Resolver
from mailwarden.urls import registrable_domain

if TYPE_CHECKING:
    from mailwarden.message import Message

MAX_AUTH_THREADS = 32
_NOT_TOKEN = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@:]")
_UNSAFE_IN_COMMENT = re.compile(r"[()\\\x00-\x1f\x7f]")


@dataclass(frozen=True)
class AuthVerdict:
    """Every live authentication result for one message."""

    envelope: Envelope
    from_domain: str
    spf: SpfResult
    dkim: tuple[DkimResult, ...]
    dmarc: DmarcResult
    arc: ArcResult
    arc_override: str = ""  # the trusted sealer whose chain overrode a DMARC failure
    dnsbl: tuple[DnsblHit, ...] = ()
    dnsbl_errors: tuple[DnsblError, ...] = ()

    @property
    def temporary_errors(self) -> list[str]:
        """Which methods could not reach a result because DNS failed (a retry may decide)."""
        found = []
        if self.spf.result == "temperror":
            found.append("spf")
        if any(d.result == "temperror" for d in self.dkim):
            found.append("dkim")
        if self.dmarc.result == "temperror":
            found.append("dmarc")
        if self.arc.result == "temperror":
            found.append("arc")
        if self.dnsbl_errors:
            found.append("dnsbl")
        return found

    @property
    def permanent_errors(self) -> list[str]:
        found = []
        if self.spf.result == "permerror":
            found.append("spf")
        if self.dmarc.result == "permerror":
            found.append("dmarc")
        return found

    def to_dict(self) -> dict[str, object]:
        dmarc = self.dmarc.to_dict()
        dmarc["arc_override"] = self.arc_override
        return {
            "spf": self.spf.to_dict(),
            "dkim": [d.to_dict() for d in self.dkim],
            "dmarc": dmarc,
            "arc": self.arc.to_dict(),
            "dnsbl": [h.to_dict() for h in self.dnsbl],
        }

    def header(self, authserv_id: str) -> str:
        """The value of the RFC 8601 Authentication-Results header Mailwarden writes."""
        statements = [authserv_id]
        spf = self.spf
        identity = (f"smtp.mailfrom={_value(self.envelope.mail_from or spf.domain)}" if spf.identity == "mailfrom"
                    else f"smtp.helo={_value(self.envelope.helo or spf.domain)}")
        statements.append(f"spf={spf.result}{_comment(spf.reason)} {identity}")
        for d in self.dkim:
            props = [f"header.d={_value(d.domain)}"] if d.domain else []
            props += [f"header.s={_value(d.selector)}"] if d.selector else []
            props += [f"header.a={_value(d.algorithm)}"] if d.algorithm else []
            props += [f"header.b={_value(d.signature_prefix)}"] if d.signature_prefix else []
            statements.append(" ".join([f"dkim={d.result}{_comment(d.reason)}", *props]))
        if not self.dkim:
            statements.append("dkim=none (no signatures)")
        dmarc = self.dmarc
        notes = [f"p={dmarc.published_policy}", f"dis={dmarc.policy}"] if dmarc.published_policy else []
        if self.arc_override:
            notes.append(f"arc override by trusted sealer {self.arc_override}")
        elif dmarc.result not in ("pass", "fail"):
            notes.append(dmarc.reason)
        props = [f"header.from={_value(self.from_domain)}"] if self.from_domain else []
        if dmarc.published_policy:
            props.append(f"policy.published-domain-policy={dmarc.published_policy}")
        if self.arc_override:
            props.append(f"policy.arc-override={_value(self.arc_override)}")
        statements.append(" ".join([f"dmarc={dmarc.result}{_comment('; '.join(notes))}", *props]))
        if self.arc.result != "none" or self.arc.sealers:
            sealers = f"sealers {', '.join(self.arc.sealers)}" if self.arc.sealers else self.arc.reason
            remote = f" smtp.remote-ip={_value(self.envelope.client_ip)}" if self.envelope.client_ip else ""
            statements.append(f"arc={self.arc.result}{_comment(sealers)}{remote}")
        return ";\r\n\t".join(statements)


def _value(text: str | None) -> str:
    """A property value as an RFC 8601 token: anything else (quotes, spaces, ';') becomes '_', so that no
    value from the envelope or DNS can end a statement or look like another result to a reader."""
    return _NOT_TOKEN.sub("_", (text or "").strip()) or "_"


def _comment(text: str) -> str:
    text = " ".join(_UNSAFE_IN_COMMENT.sub(" ", text).split())[:200]
    return f" ({text})" if text else ""


# --- evaluation ------------------------------------------------------------------------------------

def _from_domain(raw: bytes) -> str:
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        addresses = getaddresses([str(v) for v in headers.get_all("From", [])])
    except (ValueError, TypeError, IndexError):
        return ""
    for _, address in addresses:
        if "@" in address:
            return address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")
    return ""


def _mail_from_domain(envelope: Envelope) -> str:
    sender = (envelope.mail_from or "").strip().strip("<>")
    return sender.rpartition("@")[2].lower() if "@" in sender else (envelope.helo or "").lower()


def questions(raw: bytes, envelope: Envelope, from_domain: str, settings: AuthSettings,
              link_domains: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The DNS questions an evaluation will surely or probably ask, for asking them all at once."""
    asked: list[tuple[str, str]] = []
    spf_domain = _mail_from_domain(envelope)
    if spf_domain:
        asked.append((spf_domain, "TXT"))
    asked += [(name, "TXT") for name in dmarc_check.record_names(from_domain)]
    asked += [(name, "TXT") for name in dkim_check.signature_keys(raw)]
    asked += [(name, "TXT") for name in seal_keys(raw)]
    for _, _, _, name in _dnsbl_questions(envelope, from_domain, settings, link_domains):
        asked.append((name, "A"))
    return list(dict.fromkeys(asked))


def _dnsbl_questions(envelope: Envelope, from_domain: str, settings: AuthSettings,
                     link_domains: Sequence[str]) -> list[tuple[object, str, str, str]]:
    return list(dnsbl_check.questions(settings.dnsbl, envelope.client_ip, _sender_domains(envelope, from_domain),
                                      list(link_domains)[: settings.max_link_domains]))


def _sender_domains(envelope: Envelope, from_domain: str) -> list[str]:
    found = [registrable_domain(d) for d in (from_domain, _mail_from_domain(envelope)) if d]
    return list(dict.fromkeys(found))


def _trusted(sealer: str, trusted: Iterable[str]) -> bool:
    sealer = sealer.lower().rstrip(".")
    return any(sealer == t or sealer.endswith("." + t) for t in trusted)


def _vouches(results: AuthResults | None, from_domain: str) -> bool:
    """Did the sealer see this message authenticated for the From domain when it received it?"""
    if results is None:
        return False
    for r in results.results:
        if r.result != "pass":
            continue
        if r.method == "dmarc" and (not r.domain or aligned(r.domain, from_domain, "r")):
            return True
        if r.method in ("dkim", "spf") and r.domain and aligned(r.domain, from_domain, "r"):
            return True
    return False


def evaluate(
    raw: bytes,
    envelope: Envelope,
    resolver: Resolver,
    settings: AuthSettings | None = None,
    *,
    from_domain: str | None = None,
    link_domains: Sequence[str] = (),
    message_key: str = "",
) -> AuthVerdict:
    """Authenticate one message from its envelope, its bytes and DNS. Never raises on bad mail or DNS."""
    settings = settings or AuthSettings()
    from_domain = (from_domain if from_domain is not None else _from_domain(raw)).lower().rstrip(".")
    prefetch = getattr(resolver, "prefetch", None)
    if callable(prefetch):
        prefetch(questions(raw, envelope, from_domain, settings, link_domains))
    if envelope.client_ip:
        spf = spf_check.check_host(resolver, envelope.client_ip, envelope.mail_from, envelope.helo)
    else:
        spf = SpfResult("none", _mail_from_domain(envelope), reason="no client IP to check")
    dkim = dkim_check.verify_signatures(raw, resolver)
    arc = validate_chain(raw, resolver)
    key = message_key or hashlib.sha256(raw[:65536]).hexdigest()
    dmarc = dmarc_check.evaluate(resolver, from_domain, spf, dkim, key)
    override = ""
    if (dmarc.result == "fail" and arc.result == "pass" and arc.sealers
            and _trusted(arc.sealers[0], settings.trusted_arc_sealers) and _vouches(arc.latest_results, from_domain)):
        override = arc.sealers[0]
    hits, errors = dnsbl_check.lookup(resolver, settings.dnsbl, client_ip=envelope.client_ip,
                                      sender_domains=_sender_domains(envelope, from_domain),
                                      link_domains=list(link_domains)[: settings.max_link_domains])
    return AuthVerdict(envelope, from_domain, spf, dkim, dmarc, arc, override, hits, errors)


def link_domains_of(message: Message, exclude: Iterable[str] = ()) -> list[str]:
    """Registrable domains of the message's links, first seen first, without the excluded ones."""
    skip = set(exclude)
    found = [u.registrable_domain for u in message.urls if not u.is_ip and u.registrable_domain]
    return [d for d in dict.fromkeys(found) if d not in skip]


def evaluate_message(message: Message, raw: bytes, resolver: Resolver, settings: AuthSettings | None = None,
                     own_domains: Iterable[str] = ()) -> AuthVerdict:
    """``evaluate`` for a parsed message (its From domain, its link domains, its Message-ID for pct)."""
    envelope = message.envelope or Envelope()
    return evaluate(raw, envelope, resolver, settings, from_domain=message.from_.domain if message.from_ else "",
                    link_domains=link_domains_of(message, own_domains), message_key=message.message_id)


# --- async, for the gateway -----------------------------------------------------------------------

_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _auth_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(MAX_AUTH_THREADS, thread_name_prefix="mailwarden-auth")
        return _executor


async def evaluate_async(
    raw: bytes,
    envelope: Envelope,
    resolver: Resolver,
    settings: AuthSettings | None = None,
    *,
    from_domain: str | None = None,
    link_domains: Sequence[str] = (),
    message_key: str = "",
) -> AuthVerdict:
    """``evaluate`` without blocking the event loop: the independent DNS questions are awaited first
    (with a resolver that has ``aquery``), then the checks run in a worker thread on a warm cache."""
    settings = settings or AuthSettings()
    domain = from_domain if from_domain is not None else _from_domain(raw)
    aquery = getattr(resolver, "aquery", None)
    if callable(aquery):
        asked = questions(raw, envelope, domain, settings, link_domains)
        await asyncio.gather(*(aquery(name, rdtype) for name, rdtype in asked))
    run = functools.partial(evaluate, raw, envelope, resolver, settings, from_domain=domain,
                            link_domains=link_domains, message_key=message_key)
    return await asyncio.get_running_loop().run_in_executor(_auth_executor(), run)
