"""Authentication as signals: evaluated live when the message came over SMTP, else read from the trusted
Authentication-Results the organisation's boundary wrote.

A message with an envelope that names the client IP is authenticated here, from the envelope, its bytes
and DNS (``mailwarden.auth``): upstream results are not trusted, relays and forwarders break them. Other
messages (offline scans) are judged by the trusted Authentication-Results. Both give the same signal ids
with the same meaning; live evaluation adds ARC overrides, DNS errors and blocklist listings. When the gateway
has evaluated the message already (``Context.with_auth``), its verdict is used: authentication runs once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mailwarden.auth.dnsbl import DnsblHit
    from mailwarden.auth.results import AuthVerdict
    from mailwarden.message import Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal

NAME = "auth"
SIGNALS = (
    "auth.spf_fail",
    "auth.spf_softfail",
    "auth.dkim_fail",
    "auth.dmarc_fail",
    "auth.dmarc_reject_policy",
    "auth.unauthenticated",
    "auth.own_domain_spoof",
    "auth.dmarc_pass",
    "auth.no_dmarc_policy",
    "auth.dmarc_quarantine_policy",
    "auth.arc_override",
    "auth.temperror",
    "auth.permerror",
    "auth.dnsbl_client_ip",
    "auth.dnsbl_sender_domain",
    "auth.dnsbl_link_domain",
)

_FAILING = {"fail", "permerror"}


def analyze(message: Message, context: Context) -> list[Signal]:
    known = context.auth_verdict
    if known is not None and message.envelope is not None and known.envelope == message.envelope:
        return signals_for(known, message, context)  # the gateway evaluated it already: once per message
    if message.envelope is not None and message.envelope.client_ip and message.raw and _has_dns(context):
        return _live(message, context)
    signals = _trusted_results(message, context)
    if context.org.auth.dnsbl:
        signals += _dnsbl_signals(_offline_dnsbl(message, context), context)
    return signals


def _trusted_results(message: Message, context: Context) -> list[Signal]:
    if not message.auth:
        return []
    signals: list[Signal] = []
    spf = message.auth_method("spf")
    dkim = message.auth_method("dkim")
    dmarc_results = [r for ar in message.auth for r in ar.method("dmarc")]
    from_domain = message.from_.domain if message.from_ else ""
    if "fail" in spf:
        signals.append(context.signal("auth.spf_fail", "SPF fail: the sending server is not allowed by the domain"))
    elif "softfail" in spf:
        signals.append(context.signal("auth.spf_softfail", "SPF softfail for the envelope sender"))
    if dkim and "pass" not in dkim and any(r in _FAILING for r in dkim):
        signals.append(context.signal("auth.dkim_fail", "DKIM signature does not verify"))
    dmarc = dmarc_results[0] if dmarc_results else None
    override = dmarc.prop("policy.arc-override") if dmarc is not None else ""
    if dmarc is not None and dmarc.result in _FAILING and override:
        signals.append(context.signal("auth.arc_override", f"DMARC fail for {dmarc.domain or from_domain} "
                                      f"overridden: forwarded by trusted ARC sealer {override}",
                                      domain=dmarc.domain or from_domain, sealer=override))
        return signals
    if dmarc is not None and dmarc.result in _FAILING:
        policy = dmarc.prop("policy.published-domain-policy")
        signals.append(context.signal("auth.dmarc_fail", f"DMARC fail for {dmarc.domain or from_domain}",
                                      domain=dmarc.domain or from_domain, policy=policy))
        if policy == "reject":
            signals.append(context.signal("auth.dmarc_reject_policy",
                                          f"{dmarc.domain or from_domain} publishes p=reject and this mail fails it"))
    elif dmarc is not None and dmarc.result in ("none", "bestguesspass"):
        signals.append(context.signal("auth.no_dmarc_policy",
                                      f"{from_domain or 'the sender domain'} publishes no DMARC policy",
                                      domain=from_domain))
    elif dmarc is not None and dmarc.result == "pass":
        signals.append(context.signal("auth.dmarc_pass", f"DMARC pass for {dmarc.domain or from_domain}",
                                      domain=dmarc.domain or from_domain))
    if "pass" not in spf and "pass" not in dkim and (dmarc is None or dmarc.result != "pass"):
        signals.append(context.signal("auth.unauthenticated", "neither SPF nor DKIM passed for this message",
                                      spf=spf, dkim=dkim))
    if from_domain and context.org.is_own_domain(from_domain) and (dmarc is None or dmarc.result != "pass") \
            and "pass" not in dkim:
        signals.append(context.signal("auth.own_domain_spoof",
                                      f"claims to be from our own domain {from_domain} but is not authenticated",
                                      domain=from_domain))
    return signals


# --- live evaluation -------------------------------------------------------------------------------

def _has_dns(context: Context) -> bool:
    """False for the empty in-memory resolver (no DNS configured): an envelope cannot be checked without
    DNS, so the trusted results are read instead of reporting every message as unauthenticated."""
    from mailwarden.resolver import StaticResolver

    return not (isinstance(context.resolver, StaticResolver) and not context.resolver.records)


def _live(message: Message, context: Context) -> list[Signal]:
    from mailwarden.auth import evaluate_message

    verdict = evaluate_message(message, message.raw, context.resolver, context.org.auth, context.org.domains)
    return signals_for(verdict, message, context)


def signals_for(verdict: AuthVerdict, message: Message, context: Context) -> list[Signal]:
    """The signals of a live verdict (same ids and meaning as for trusted results)."""
    signals: list[Signal] = []
    spf, dmarc = verdict.spf, verdict.dmarc
    from_domain = verdict.from_domain
    if spf.result == "fail":
        signals.append(context.signal("auth.spf_fail", f"SPF fail: {verdict.envelope.client_ip} may not send for "
                                      f"{spf.domain}", domain=spf.domain, reason=spf.reason))
    elif spf.result == "softfail":
        signals.append(context.signal("auth.spf_softfail", f"SPF softfail for {spf.domain}", domain=spf.domain))
    dkim_results = [d.result for d in verdict.dkim]
    if dkim_results and "pass" not in dkim_results and any(r in _FAILING for r in dkim_results):
        failed = next(d for d in verdict.dkim if d.result in _FAILING)
        signals.append(context.signal("auth.dkim_fail", f"DKIM signature of {failed.domain or 'the sender'} does not "
                                      f"verify: {failed.reason}", domain=failed.domain, selector=failed.selector,
                                      reason=failed.reason))
    if verdict.arc_override:
        signals.append(context.signal("auth.arc_override", f"DMARC fail for {from_domain} overridden: forwarded by "
                                      f"trusted ARC sealer {verdict.arc_override}", domain=from_domain,
                                      sealer=verdict.arc_override, policy=dmarc.published_policy))
    elif dmarc.result == "fail":
        signals.append(context.signal("auth.dmarc_fail", f"DMARC fail for {from_domain}: {dmarc.reason}",
                                      domain=from_domain, policy=dmarc.policy, record=dmarc.record_domain))
        if context.org.auth.enforce_dmarc and dmarc.policy == "reject":
            signals.append(context.signal("auth.dmarc_reject_policy",
                                          f"{dmarc.record_domain} publishes p=reject and this mail fails it",
                                          domain=from_domain))
        elif context.org.auth.enforce_dmarc and dmarc.policy == "quarantine":
            signals.append(context.signal("auth.dmarc_quarantine_policy",
                                          f"{dmarc.record_domain} publishes p=quarantine and this mail fails it",
                                          domain=from_domain))
    elif dmarc.result == "none" and from_domain:
        signals.append(context.signal("auth.no_dmarc_policy", f"{from_domain} publishes no DMARC policy",
                                      domain=from_domain))
    elif dmarc.result == "pass":
        signals.append(context.signal("auth.dmarc_pass", f"DMARC pass for {from_domain}", domain=from_domain,
                                      aligned=dmarc.aligned_domain))
    spf_pass, dkim_pass = spf.result == "pass", "pass" in dkim_results
    if not spf_pass and not dkim_pass and dmarc.result != "pass" and not verdict.arc_override:
        signals.append(context.signal("auth.unauthenticated", "neither SPF nor DKIM passed for this message",
                                      spf=spf.result, dkim=dkim_results))
    if from_domain and context.org.is_own_domain(from_domain) and dmarc.result != "pass" and not dkim_pass \
            and not verdict.arc_override:
        signals.append(context.signal("auth.own_domain_spoof",
                                      f"claims to be from our own domain {from_domain} but is not authenticated",
                                      domain=from_domain))
    if verdict.temporary_errors:
        signals.append(context.signal("auth.temperror", "DNS failed for " + ", ".join(verdict.temporary_errors)
                                      + ": authentication could not finish (a retry may)",
                                      methods=verdict.temporary_errors))
    if verdict.permanent_errors:
        reasons = {"spf": spf.reason, "dmarc": dmarc.reason}
        signals.append(context.signal("auth.permerror", "broken records: " + "; ".join(
            reasons[m] for m in verdict.permanent_errors), methods=verdict.permanent_errors))
    signals += _dnsbl_signals(verdict.dnsbl, context)
    return signals


_DNSBL_SIGNALS = {"client_ip": "auth.dnsbl_client_ip", "sender": "auth.dnsbl_sender_domain",
                  "links": "auth.dnsbl_link_domain"}


def _dnsbl_signals(hits: Iterable[DnsblHit], context: Context) -> list[Signal]:
    signals = []
    factors = {zone.zone: zone.factor for zone in context.org.auth.dnsbl}
    seen: set[tuple[str, str]] = set()
    for hit in hits:
        signal_id = _DNSBL_SIGNALS[hit.target]
        if (signal_id, hit.value) in seen:
            continue
        seen.add((signal_id, hit.value))
        what = {"client_ip": "client IP", "sender": "sender domain", "links": "link domain"}[hit.target]
        signals.append(context.signal(signal_id, f"{what} {hit.value} is listed on {hit.zone}: "
                                      f"{', '.join(hit.meanings)}", factors.get(hit.zone, 1.0), zone=hit.zone,
                                      value=hit.value, codes=list(hit.codes), meanings=list(hit.meanings)))
    return signals


def _offline_dnsbl(message: Message, context: Context) -> tuple[DnsblHit, ...]:
    """Domain blocklists for a message without an envelope: its From domain and link domains."""
    from mailwarden.auth import dnsbl
    from mailwarden.auth.results import link_domains_of

    zones = [z for z in context.org.auth.dnsbl if z.kind == "domain"]
    sender = [message.from_.registrable_domain] if message.from_ and message.from_.domain else []
    links = link_domains_of(message, context.org.domains)[: context.org.auth.max_link_domains]
    hits, _ = dnsbl.lookup(context.resolver, zones, sender_domains=sender, link_domains=links)
    return hits
