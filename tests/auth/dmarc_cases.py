"""The DMARC table (RFC 7489): records the DNS server publishes, the SPF and DKIM results, the outcome.

Case ``n`` lives at the organisational domain ``c{n}.test``; the From domain is that domain ("org"), a
subdomain ("sub" = sub.c{n}.test), a deeper one ("deep" = a.b.c{n}.test), or a name in the zone the
server cannot load ("broken", SERVFAIL). Identifier places: "org", "sub", "bounce" (bounce.c{n}.test),
"other" (an unrelated domain).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.auth.dkim import DkimResult
from mailwarden.auth.spf import SpfResult


@dataclass(frozen=True)
class Case:
    name: str
    result: str
    policy: str | None = None  # the policy that applies (checked when given)
    org: tuple[str, ...] = ()  # TXT records at _dmarc.<org>
    sub: tuple[str, ...] = ()  # TXT records at _dmarc.sub.<org>
    from_: str = "org"
    spf: tuple[str, str] | None = None  # (result, place)
    dkim: tuple[tuple[str, str], ...] = ()  # ((result, place), ...)
    key: str = "<message-1@example>"
    sampled_out: bool = False


CASES: tuple[Case, ...] = (
    # alignment: SPF
    Case("spf relaxed: bounce subdomain aligns", "pass", org=("v=DMARC1; p=reject",), spf=("pass", "bounce")),
    Case("spf strict: bounce subdomain does not align", "fail", "reject", org=("v=DMARC1; p=reject; aspf=s",),
         spf=("pass", "bounce")),
    Case("spf strict: the same domain aligns", "pass", org=("v=DMARC1; p=reject; aspf=s",), spf=("pass", "org")),
    Case("spf pass for an unrelated domain", "fail", "quarantine", org=("v=DMARC1; p=quarantine",),
         spf=("pass", "other")),
    Case("spf softfail is no pass", "fail", "reject", org=("v=DMARC1; p=reject",), spf=("softfail", "org")),
    # alignment: DKIM
    Case("dkim relaxed: a subdomain signature aligns", "pass", org=("v=DMARC1; p=reject",), dkim=(("pass", "sub"),)),
    Case("dkim strict: a subdomain signature does not align", "fail", "reject",
         org=("v=DMARC1; p=reject; adkim=s",), dkim=(("pass", "sub"),)),
    Case("dkim strict: the same domain aligns", "pass", org=("v=DMARC1; p=reject; adkim=s",),
         dkim=(("pass", "org"),)),
    Case("dkim pass for an unrelated domain", "fail", "reject", org=("v=DMARC1; p=reject",),
         dkim=(("pass", "other"),), spf=("pass", "other")),
    Case("aligned dkim that fails", "fail", "reject", org=("v=DMARC1; p=reject",), dkim=(("fail", "org"),)),
    Case("one aligned pass among failures is enough", "pass", org=("v=DMARC1; p=reject",),
         dkim=(("fail", "org"), ("pass", "org")), spf=("fail", "org")),
    Case("aligned spf passes while dkim fails", "pass", org=("v=DMARC1; p=reject",), spf=("pass", "org"),
         dkim=(("fail", "org"),)),
    # discovery and sp
    Case("no record anywhere", "none", from_="sub", spf=("pass", "other")),
    Case("org record, subdomain From, sp=none", "fail", "none", org=("v=DMARC1; p=reject; sp=none",), from_="sub"),
    Case("org record, subdomain From, no sp: p applies", "fail", "reject", org=("v=DMARC1; p=reject",), from_="sub"),
    Case("org record, deeper subdomain From, sp=quarantine", "fail", "quarantine",
         org=("v=DMARC1; p=reject; sp=quarantine",), from_="deep"),
    Case("sp does not apply to the organisational domain itself", "fail", "reject",
         org=("v=DMARC1; p=reject; sp=none",)),
    Case("the subdomain's own record wins over the org's", "fail", "quarantine", org=("v=DMARC1; p=reject",),
         sub=("v=DMARC1; p=quarantine",), from_="sub"),
    Case("a subdomain record's sp is not used for the subdomain itself", "fail", "none",
         org=("v=DMARC1; p=reject",), sub=("v=DMARC1; p=none; sp=reject",), from_="sub"),
    # pct
    Case("pct=0 and p=reject: quarantine applies", "fail", "quarantine", org=("v=DMARC1; p=reject; pct=0",),
         sampled_out=True),
    Case("pct=0 and p=quarantine: none applies", "fail", "none", org=("v=DMARC1; p=quarantine; pct=0",),
         sampled_out=True),
    Case("pct=100 applies the policy", "fail", "reject", org=("v=DMARC1; p=reject; pct=100",)),
    Case("pct over 100 is read as 100", "fail", "reject", org=("v=DMARC1; p=reject; pct=150",)),
    Case("pct that is not a number is read as 100", "fail", "reject", org=("v=DMARC1; p=reject; pct=half",)),
    # records and syntax
    Case("two DMARC records", "permerror", org=("v=DMARC1; p=reject", "v=DMARC1; p=none")),
    Case("other TXT records beside the DMARC record are ignored", "fail", "reject",
         org=("v=spf1 -all", "v=DMARC1; p=reject", "google-site-verification=abc")),
    Case("no p and no rua", "permerror", org=("v=DMARC1; adkim=s",)),
    Case("invalid p with a valid rua reads as p=none", "fail", "none",
         org=("v=DMARC1; p=block; rua=mailto:dmarc@c.example",)),
    Case("invalid sp and no rua", "permerror", org=("v=DMARC1; p=reject; sp=maybe",), from_="sub"),
    Case("v not first: not a DMARC record", "none", org=("p=reject; v=DMARC1",)),
    Case("v value is case-sensitive", "none", org=("v=dmarc1; p=reject",)),
    Case("invalid adkim falls back to relaxed", "pass", org=("v=DMARC1; p=reject; adkim=x",), dkim=(("pass", "sub"),)),
    Case("spaces, no spaces and a trailing semicolon", "fail", "reject", org=("v=DMARC1 ;p = reject ; ",)),
    Case("unknown tags are ignored", "fail", "quarantine", org=("v=DMARC1; p=quarantine; foo=bar; fo=1",)),
    Case("policy values are read case-insensitively", "fail", "reject", org=("v=DMARC1; p=REJECT",)),
    Case("a broken subdomain record does not fall back to the org", "permerror", org=("v=DMARC1; p=reject",),
         sub=("v=DMARC1; p=nonsense",), from_="sub"),
    Case("two records at the org domain for a subdomain From", "permerror",
         org=("v=DMARC1; p=reject", "v=DMARC1; p=reject; pct=100"), from_="sub"),
    # temporary errors
    Case("SERVFAIL for the record", "temperror", from_="broken", spf=("fail", "other")),
    Case("aligned spf temperror and nothing passed", "temperror", org=("v=DMARC1; p=reject",),
         spf=("temperror", "org")),
    Case("aligned dkim temperror and nothing passed", "temperror", org=("v=DMARC1; p=reject",),
         dkim=(("temperror", "sub"),)),
    Case("unaligned temperror does not block the fail", "fail", "reject", org=("v=DMARC1; p=reject",),
         dkim=(("temperror", "other"),)),
)


def org_domain(index: int) -> str:
    return f"c{index}.test"


def place(index: int, where: str) -> str:
    org = org_domain(index)
    return {"org": org, "sub": f"sub.{org}", "deep": f"a.b.{org}", "bounce": f"bounce.{org}",
            "other": "unrelated-sender.test", "broken": "x.broken.test"}[where]


def records() -> list[tuple[str, int, str, str]]:
    found = []
    for index, case in enumerate(CASES):
        found += [(f"_dmarc.{org_domain(index)}", 300, "TXT", text) for text in case.org]
        found += [(f"_dmarc.sub.{org_domain(index)}", 300, "TXT", text) for text in case.sub]
    return found


def inputs(index: int) -> tuple[str, SpfResult | None, list[DkimResult]]:
    case = CASES[index]
    spf = SpfResult(case.spf[0], place(index, case.spf[1])) if case.spf else None
    dkim = [DkimResult(result, place(index, where), "sel") for result, where in case.dkim]
    return place(index, case.from_), spf, dkim
