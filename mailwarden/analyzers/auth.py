"""Authentication results the organisation's boundary wrote (trusted Authentication-Results) as signals.

Live evaluation from the envelope and DNS replaces these when the message came over SMTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
)

_FAILING = {"fail", "permerror"}


def analyze(message: Message, context: Context) -> list[Signal]:
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
