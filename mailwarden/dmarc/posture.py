"""DNS posture of own and partner domains: what makes them easy to spoof, and what to fix.

    check_domains(resolver, domains, roles, settings) -> [DomainPosture]
    DomainPosture.findings: [Finding(check, severity, problem, fix)], worst first

Looked at, through Mailwarden's resolver only:
- SPF: one ``v=spf1`` record, evaluated with ``mailwarden.auth.spf`` for an address no record lists, so
  every mechanism is followed and the DNS lookups counted (over 10 is a permerror, RFC 7208 4.6.4);
  ``+all``/``?all``/no ``all``, ``ptr``, void lookups;
- DMARC: ``_dmarc.<domain>`` or the organisational domain's (``mailwarden.auth.dmarc.parse_record``):
  p, sp (what subdomains get), pct, rua, ruf; a strength: missing, invalid, monitoring (p=none),
  quarantine, reject (pct below 100 or sp=none weaken it);
- DKIM: the common selectors (``mailwarden/data/dmarc.toml``) and configured ones; key type, RSA size,
  revoked keys, testing mode;
- MTA-STS (``_mta-sts`` TXT) and TLS-RPT (``_smtp._tls`` TXT) records; the policy file is not fetched;
- MX, null MX (RFC 7505).

Partner domains with missing or weak DMARC are flagged: mail spoofing them is easier to deliver, and
the finding says what to ask the partner to change.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mailwarden.auth.dmarc import DmarcRecordError, parse_record
from mailwarden.auth.spf import check_host
from mailwarden.dmarc.settings import PostureSettings
from mailwarden.resolver import DnsAnswer, Resolver
from mailwarden.urls import organizational_domain

Role = Literal["own", "partner", "other"]
SEVERITIES = ("critical", "high", "medium", "low", "info")
UNLISTED_IP = "0.0.0.1"  # no SPF record lists it: every mechanism is evaluated, every lookup counted
_FAILED = ("SERVFAIL", "TIMEOUT")


@dataclass(frozen=True)
class Finding:
    check: str  # spf | dmarc | dkim | mta_sts | tls_rpt | mx | dns
    severity: str
    problem: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "severity": self.severity, "problem": self.problem, "fix": self.fix}


@dataclass
class DomainPosture:
    domain: str
    role: Role
    mx: list[str] = field(default_factory=list)
    spf: dict[str, Any] = field(default_factory=dict)
    dmarc: dict[str, Any] = field(default_factory=dict)
    dkim: list[dict[str, Any]] = field(default_factory=list)
    mta_sts: dict[str, Any] | None = None
    tls_rpt: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)
    partner_flag: str | None = None

    def add(self, check: str, severity: str, problem: str, fix: str) -> None:
        self.findings.append(Finding(check, severity, problem, fix))

    @property
    def worst(self) -> str:
        return min((f.severity for f in self.findings), key=SEVERITIES.index, default="none")

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "role": self.role, "worst": self.worst, "partner_flag": self.partner_flag,
                "mx": self.mx, "spf": self.spf, "dmarc": self.dmarc, "dkim": self.dkim, "mta_sts": self.mta_sts,
                "tls_rpt": self.tls_rpt, "findings": [f.to_dict() for f in self.findings]}


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for chunk in text.split(";"):
        name, sep, value = chunk.partition("=")
        if sep and name.strip():
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


def questions(domain: str, selectors: Sequence[str]) -> list[tuple[str, str]]:
    """Every DNS question a check of ``domain`` asks first (to start them all at once)."""
    org = organizational_domain(domain)
    asked = [(domain, "MX"), (domain, "TXT"), (f"_dmarc.{domain}", "TXT"), (f"_mta-sts.{domain}", "TXT"),
             (f"_smtp._tls.{domain}", "TXT")]
    if org != domain:
        asked.append((f"_dmarc.{org}", "TXT"))
    asked += [(f"{selector}._domainkey.{domain}", "TXT") for selector in selectors]
    return asked


# --- the checks ----------------------------------------------------------------------------------------

def _check_mx(resolver: Resolver, posture: DomainPosture) -> None:
    answer = resolver.query(posture.domain, "MX")
    if answer.status in _FAILED:
        posture.add("dns", "info", f"the MX lookup failed ({answer.status})", "check again later")
        return
    posture.mx = sorted(answer.records, key=lambda r: (int(r.split()[0]) if r.split()[0].isdigit() else 0, r))
    if posture.mx == ["0 ."] or posture.mx == ["0"]:
        posture.add("mx", "info", "null MX (RFC 7505): the domain accepts no mail",
                    "for a domain that sends no mail either, publish v=spf1 -all and v=DMARC1; p=reject")
    elif not posture.mx:
        posture.add("mx", "info", "no MX record: mail to the domain goes to its A record, if any",
                    "publish MX records, or a null MX (0 .) if the domain takes no mail")


def _check_spf(resolver: Resolver, posture: DomainPosture, settings: PostureSettings) -> None:
    domain = posture.domain
    answer = resolver.query(domain, "TXT")
    if answer.status in _FAILED:
        posture.add("dns", "info", f"the SPF lookup failed ({answer.status})", "check again later")
        return
    records = [r for r in answer.records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
    if not records:
        posture.spf = {"record": None}
        posture.add("spf", "high", "no SPF record: any server may send as the domain as far as SPF can tell",
                    "publish v=spf1 with the domain's senders and -all (v=spf1 -all if it sends no mail)")
        return
    if len(records) > 1:
        posture.spf = {"record": records, "result": "permerror"}
        posture.add("spf", "critical", f"{len(records)} SPF records: receivers treat SPF as broken (permerror)",
                    "merge them into one v=spf1 record")
        return
    record = records[0]
    result = check_host(resolver, UNLISTED_IP, f"postmaster@{domain}", None)
    terms = record.split()[1:]
    last_all = next((t for t in reversed(terms) if t.lower().lstrip("+-~?") == "all"), None)
    posture.spf = {"record": record, "lookups": result.lookups, "void_lookups": result.void_lookups,
                   "all": last_all, "result": result.result if result.result in ("permerror", "temperror") else "ok",
                   "reason": result.reason if result.result in ("permerror", "temperror") else ""}
    if result.result == "permerror":
        posture.add("spf", "critical", f"the SPF record is broken (permerror): {result.reason}",
                    "fix the record; flatten includes if it needs more than 10 DNS lookups")
    elif result.result == "temperror":
        posture.add("dns", "info", f"SPF could not be evaluated: {result.reason}", "check again later")
    elif result.lookups >= settings.spf_lookup_warning:
        posture.add("spf", "medium", f"the SPF record needs {result.lookups} of the 10 DNS lookups allowed",
                    "remove unused includes or flatten them before one more include breaks SPF")
    qualifier = (last_all or "")[:1] if last_all and last_all[0] in "+-~?" else ("+" if last_all else "")
    if qualifier == "+":
        posture.add("spf", "critical", f"'{last_all}': every server on the Internet passes SPF for the domain",
                    "end the record with -all (or ~all while moving to DMARC enforcement)")
    elif qualifier == "?":
        posture.add("spf", "medium", "'?all': servers not listed are neutral, not failed",
                    "end the record with -all or ~all")
    elif not last_all and not any(t.lower().startswith("redirect=") for t in terms):
        posture.add("spf", "medium", "no 'all' at the end: unlisted servers are neutral",
                    "end the record with -all or ~all")
    elif qualifier == "~":
        posture.add("spf", "info", "'~all': unlisted servers soft-fail (fine once DMARC is enforced)",
                    "use -all once every sender is listed")
    if any(t.lower().lstrip("+-~?").startswith("ptr") for t in terms):
        posture.add("spf", "low", "the record uses 'ptr', which RFC 7208 says not to use (slow, unreliable)",
                    "list the senders' addresses or includes instead")
    if any(t.lower().lstrip("+-~?") in ("ip4:0.0.0.0/0", "ip6:::/0") for t in terms):
        posture.add("spf", "critical", "the record allows every address (0.0.0.0/0 or ::/0)",
                    "list only the domain's own senders")


def _dmarc_record(resolver: Resolver, name: str) -> tuple[str, list[str]]:
    answer = resolver.query(name, "TXT")
    if answer.status in _FAILED:
        return answer.status, []
    return "ok", [r.strip() for r in answer.records if r.strip().lower().replace(" ", "").startswith("v=dmarc1")]


def _check_dmarc(resolver: Resolver, posture: DomainPosture) -> None:
    domain = posture.domain
    org = organizational_domain(domain)
    status, records = _dmarc_record(resolver, f"_dmarc.{domain}")
    found_at, inherited = f"_dmarc.{domain}", False
    if status == "ok" and not records and org != domain:
        status, records = _dmarc_record(resolver, f"_dmarc.{org}")
        found_at, inherited = f"_dmarc.{org}", True
    if status != "ok":
        posture.dmarc = {"strength": "unknown"}
        posture.add("dns", "info", f"the DMARC lookup failed ({status})", "check again later")
        return
    if not records:
        posture.dmarc = {"record": None, "strength": "missing"}
        posture.add("dmarc", "critical", "no DMARC record: receivers deliver mail that spoofs the domain",
                    f"publish _dmarc.{domain} TXT \"v=DMARC1; p=none; rua=mailto:dmarc@{domain}\", read the "
                    "reports, then move to p=quarantine and p=reject")
        return
    if len(records) > 1:
        posture.dmarc = {"record": records, "strength": "invalid", "found_at": found_at}
        posture.add("dmarc", "critical", f"{len(records)} DMARC records at {found_at}: receivers ignore them all",
                    "keep exactly one v=DMARC1 record")
        return
    text = records[0]
    tags = _tags(text)
    try:
        record = parse_record(text)
    except DmarcRecordError as exc:
        posture.dmarc = {"record": text, "strength": "invalid", "found_at": found_at}
        posture.add("dmarc", "critical", f"the DMARC record gives no policy: {exc}",
                    "write it as v=DMARC1; p=none|quarantine|reject; rua=mailto:...")
        return
    effective = (record.subdomain_policy or record.policy) if inherited else record.policy
    strength = {"none": "monitoring", "quarantine": "quarantine", "reject": "reject"}[effective]
    posture.dmarc = {"record": text, "found_at": found_at, "inherited": inherited, "p": record.policy,
                     "sp": record.subdomain_policy, "pct": record.pct, "rua": list(record.rua),
                     "ruf": [u.strip() for u in tags.get("ruf", "").split(",") if u.strip()],
                     "adkim": record.adkim, "aspf": record.aspf, "np": tags.get("np"), "policy": effective,
                     "strength": strength}
    where = f" (inherited from {org}, whose sp applies)" if inherited else ""
    if effective == "none":
        posture.add("dmarc", "high", f"p=none{where}: monitoring only, mail that spoofs the domain is delivered",
                    "once the reports show every legitimate sender passing, move to p=quarantine, then p=reject")
    elif effective == "quarantine":
        posture.add("dmarc", "medium", f"p=quarantine{where}: spoofed mail lands in spam folders, not refused",
                    "move to p=reject")
    if record.pct < 100 and effective != "none":
        posture.dmarc["strength"] = "partial"
        posture.add("dmarc", "medium", f"pct={record.pct}: the policy applies to {record.pct}% of failing mail only",
                    "raise pct to 100 (or drop it)")
    if not inherited and record.subdomain_policy == "none" and record.policy != "none":
        posture.add("dmarc", "medium", "sp=none: subdomains (invented ones too) can be spoofed freely",
                    "drop sp or set sp=reject")
    if not record.rua:
        severity = "medium" if posture.role == "own" else "low"
        posture.add("dmarc", severity, "no rua: no aggregate reports, so nobody sees who sends as the domain",
                    f"add rua=mailto:dmarc-reports@{org}")
    for note in record.notes:
        posture.add("dmarc", "low", f"record value ignored: {note}", "fix the tag's value")


def _key_bits(key_type: str, data: str) -> int | None:
    if key_type != "rsa":
        return None
    try:
        der = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(der)
    except (ValueError, TypeError):
        return None
    return key.key_size if isinstance(key, rsa.RSAPublicKey) else None


def _check_dkim(resolver: Resolver, posture: DomainPosture, selectors: Sequence[str],
                settings: PostureSettings) -> None:
    for selector in selectors:
        answer: DnsAnswer = resolver.query(f"{selector}._domainkey.{posture.domain}", "TXT")
        keys = [r for r in answer.records if "p=" in r.replace(" ", "") or r.lower().startswith("v=dkim1")]
        if not keys:
            continue
        tags = _tags(keys[0])
        key_type = tags.get("k", "rsa").lower()
        data = "".join(tags.get("p", "").split())
        bits = _key_bits(key_type, data) if data else None
        entry = {"selector": selector, "key_type": key_type, "bits": bits, "revoked": not data,
                 "testing": "y" in tags.get("t", "").lower().split(":")}
        posture.dkim.append(entry)
        if not data:
            continue
        if entry["testing"]:
            posture.add("dkim", "low", f"selector {selector} is in testing mode (t=y)",
                        "drop t=y once signing works")
        if bits is not None and bits < 1024:
            posture.add("dkim", "high", f"selector {selector}: a {bits}-bit RSA key can be broken",
                        "rotate to a 2048-bit key")
        elif bits is not None and bits < settings.dkim_min_bits:
            posture.add("dkim", "low", f"selector {selector}: a {bits}-bit RSA key (2048 recommended)",
                        "rotate to a 2048-bit key")
        elif key_type == "rsa" and bits is None:
            posture.add("dkim", "medium", f"selector {selector}: the key cannot be read", "republish the public key")
    if not any(not k["revoked"] for k in posture.dkim):
        posture.add("dkim", "low" if posture.mx else "info",
                    f"no DKIM key among the {len(selectors)} selectors tried",
                    "sign outgoing mail with DKIM (and add your selector to [dmarc] dkim_selectors in org.toml)")


def _check_tls(resolver: Resolver, posture: DomainPosture) -> None:
    accepts_mail = bool(posture.mx) and posture.mx != ["0 ."]
    sts = [r for r in resolver.query(f"_mta-sts.{posture.domain}", "TXT").records
           if r.replace(" ", "").lower().startswith("v=stsv1")]
    if sts:
        tags = _tags(sts[0])
        posture.mta_sts = {"record": sts[0], "id": tags.get("id")}
        if not tags.get("id"):
            posture.add("mta_sts", "medium", "the MTA-STS record has no id", "add id=<a new value per policy change>")
    elif accepts_mail:
        posture.add("mta_sts", "low", "no MTA-STS: mail to the domain can be downgraded to plain text in transit",
                    f"publish _mta-sts.{posture.domain} TXT \"v=STSv1; id=...\" and the policy file over HTTPS")
    rpt = [r for r in resolver.query(f"_smtp._tls.{posture.domain}", "TXT").records
           if r.replace(" ", "").lower().startswith("v=tlsrptv1")]
    if rpt:
        tags = _tags(rpt[0])
        posture.tls_rpt = {"record": rpt[0], "rua": [u.strip() for u in tags.get("rua", "").split(",") if u.strip()]}
        if not posture.tls_rpt["rua"]:
            posture.add("tls_rpt", "medium", "the TLS-RPT record has no rua", "add rua=mailto:...")
    elif accepts_mail:
        posture.add("tls_rpt", "low", "no TLS-RPT: nobody is told when senders fail to reach the domain securely",
                    f"publish _smtp._tls.{posture.domain} TXT \"v=TLSRPTv1; rua=mailto:tls-reports@...\"")


def _flag_partner(posture: DomainPosture) -> None:
    strength = posture.dmarc.get("strength")
    if posture.role != "partner" or strength in ("reject", "unknown"):
        return
    posture.partner_flag = "no_dmarc" if strength in ("missing", "invalid") else "weak_dmarc"
    posture.add("partner", "high",
                f"partner domain with {'no usable' if posture.partner_flag == 'no_dmarc' else 'weak'} DMARC "
                f"({strength}): mail spoofing this partner is easier to deliver to us and to others",
                f"treat unauthenticated mail from {posture.domain} with suspicion, and ask the partner to publish "
                "p=reject once their reports show all their senders pass")


def check_domain(resolver: Resolver, domain: str, role: Role = "other", selectors: Sequence[str] = (),
                 settings: PostureSettings | None = None) -> DomainPosture:
    settings = settings or PostureSettings()
    posture = DomainPosture(domain.lower().rstrip("."), role)
    _check_mx(resolver, posture)
    _check_spf(resolver, posture, settings)
    _check_dmarc(resolver, posture)
    _check_dkim(resolver, posture, selectors or settings.dkim_selectors, settings)
    _check_tls(resolver, posture)
    _flag_partner(posture)
    posture.findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return posture


def check_domains(resolver: Resolver, domains: Iterable[str], roles: Mapping[str, Role] | None = None,
                  settings: PostureSettings | None = None) -> list[DomainPosture]:
    """Each domain's posture; with a live resolver, every question is asked at once before any is read."""
    settings = settings or PostureSettings()
    names = [d.lower().rstrip(".") for d in domains]
    prefetch = getattr(resolver, "prefetch", None)
    if prefetch is not None:
        prefetch([q for name in names for q in questions(name, settings.dkim_selectors)])
    return [check_domain(resolver, name, (roles or {}).get(name, "other"), settings.dkim_selectors, settings)
            for name in names]
