"""SPF (RFC 7208): is the client IP allowed to send for the envelope sender's domain?

    check_host(resolver, ip, domain, sender, helo) -> SpfResult(result, domain, mechanism, reason, ...)

Own code so that every DNS question goes through Mailwarden's resolver. What RFC 7208 bounds is bounded:
at most 10 terms that cause DNS lookups (include, a, mx, ptr, exists, redirect; section 4.6.4), at most 2
void lookups (NXDOMAIN or no answer, 4.6.4), at most 10 MX or PTR names per mechanism; past a limit the
result is ``permerror``. A DNS timeout or server failure is ``temperror`` (section 5). Macros (section 7)
are expanded, except ``%{p}``, which RFC 7208 says not to use and which expands to ``unknown`` here.
The ``exp`` modifier is accepted and not fetched (it only words the rejection).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass, field

from mailwarden.resolver import DnsAnswer, Resolver

MAX_DNS_MECHANISMS = 10
MAX_VOID_LOOKUPS = 2
MAX_NAMES_PER_MECHANISM = 10
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")

_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)
_MACRO = re.compile(r"%(?:\{([a-zA-Z])([0-9]*)(r?)([.\-+,/_=]*)\}|(.))")
_DUAL_CIDR = re.compile(r"^(.*?)(?:/(\d+))?(?://(\d+))?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$", re.IGNORECASE)


class _Abort(Exception):
    """Ends check_host with a final result (temperror or permerror)."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


@dataclass
class _Budget:
    lookups: int = 0
    void: int = 0

    def spend(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_DNS_MECHANISMS:
            raise _Abort("permerror", f"more than {MAX_DNS_MECHANISMS} DNS lookups (at '{term}')")

    def answered(self, answer: DnsAnswer, name: str) -> DnsAnswer:
        if answer.status in ("SERVFAIL", "TIMEOUT"):
            raise _Abort("temperror", f"DNS {answer.status} for {name}")
        if answer.status == "NXDOMAIN" or not answer.records:
            self.void += 1
            if self.void > MAX_VOID_LOOKUPS:
                raise _Abort("permerror", f"more than {MAX_VOID_LOOKUPS} void DNS lookups (at {name})")
        return answer


@dataclass(frozen=True)
class SpfResult:
    result: str
    domain: str
    mechanism: str = ""
    reason: str = ""
    identity: str = "mailfrom"  # or helo, when the reverse path was null
    lookups: int = 0
    void_lookups: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"result": self.result, "domain": self.domain, "identity": self.identity,
                "mechanism": self.mechanism, "reason": self.reason}


@dataclass
class _Check:
    resolver: Resolver
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    sender: str
    helo: str
    budget: _Budget = field(default_factory=_Budget)
    depth: int = 0

    # --- DNS ---------------------------------------------------------------------------------------

    def _ask(self, name: str, rdtype: str) -> DnsAnswer:
        return self.budget.answered(self.resolver.query(name, rdtype), name)

    def _addresses(self, name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        rdtype = "A" if self.ip.version == 4 else "AAAA"
        found = []
        for text in self._ask(name, rdtype).records:
            try:
                found.append(ipaddress.ip_address(text))
            except ValueError:
                continue
        return found

    # --- check_host --------------------------------------------------------------------------------

    def check_host(self, domain: str) -> tuple[str, str, str]:
        """(result, matching mechanism, reason) for one domain; raises _Abort for errors."""
        if not _valid_domain(domain):
            return "none", "", f"'{domain}' is not a domain SPF can check"
        answer = self.resolver.query(domain, "TXT")
        if answer.status in ("SERVFAIL", "TIMEOUT"):
            raise _Abort("temperror", f"DNS {answer.status} for the SPF record of {domain}")
        records = [r for r in answer.records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
        if not records:
            return "none", "", f"{domain} publishes no SPF record"
        if len(records) > 1:
            raise _Abort("permerror", f"{domain} publishes {len(records)} SPF records")
        return self._evaluate(records[0], domain)

    def _evaluate(self, record: str, domain: str) -> tuple[str, str, str]:
        terms = record.split()[1:]
        directives: list[tuple[str, str, str]] = []  # (qualifier result, mechanism, argument)
        redirect: str | None = None
        seen_modifiers: set[str] = set()
        for term in terms:
            modifier = _MODIFIER.match(term)
            if modifier and modifier.group(1).lower() not in _MECHANISMS:
                name = modifier.group(1).lower()
                if name in ("redirect", "exp"):
                    if name in seen_modifiers:
                        raise _Abort("permerror", f"'{name}' given twice in the SPF record of {domain}")
                    seen_modifiers.add(name)
                    if name == "redirect":
                        redirect = modifier.group(2)
                continue  # unknown modifiers are ignored (section 6)
            qualifier = _QUALIFIERS.get(term[0], "")
            body = term[1:] if qualifier else term
            mechanism, sep, argument = body.partition(":")
            if not sep and "/" in mechanism:
                mechanism, slash, rest = mechanism.partition("/")
                argument = slash + rest
                sep = ""
            mechanism = mechanism.lower()
            if mechanism not in _MECHANISMS:
                raise _Abort("permerror", f"unknown SPF mechanism '{term}' in {domain}")
            if sep and not argument:
                raise _Abort("permerror", f"empty argument in '{term}' in {domain}")
            directives.append((qualifier or "pass", mechanism, (":" if sep else "") + argument))
        for result, mechanism, argument in directives:
            if self._matches(mechanism, argument, domain):
                text = mechanism + argument
                return result, text, f"matched {text} in {domain}"
        if redirect is not None:
            self.budget.spend("redirect=" + redirect)
            target = self._expand(redirect, domain)
            result, matched, reason = self._nested(target)
            if result == "none":
                raise _Abort("permerror", f"redirect to {target}, which has no SPF record")
            return result, matched, reason
        return "neutral", "", f"no mechanism matched in {domain}"

    def _nested(self, domain: str) -> tuple[str, str, str]:
        self.depth += 1
        try:
            return self.check_host(domain)
        finally:
            self.depth -= 1

    # --- mechanisms --------------------------------------------------------------------------------

    def _matches(self, mechanism: str, argument: str, domain: str) -> bool:
        spec = argument[1:] if argument.startswith(":") else argument
        if mechanism == "all":
            if argument:
                raise _Abort("permerror", f"'all' takes no argument in {domain}")
            return True
        if mechanism in ("ip4", "ip6"):
            return self._ip_matches(mechanism, spec, domain)
        self.budget.spend(mechanism + argument)
        if mechanism == "include":
            return self._include(self._expand(spec, domain, required=True))
        if mechanism == "exists":
            target = self._expand(spec, domain, required=True)
            return bool(self._ask(target, "A").records)
        if mechanism == "ptr":
            if argument.startswith("/"):
                raise _Abort("permerror", f"'ptr' takes no prefix length in {domain}")
            return self._ptr(self._expand(spec, domain) if spec else domain)
        name_part, v4, v6 = _dual_cidr(argument if argument.startswith("/") else spec, domain)
        target = self._expand(name_part, domain) if name_part else domain
        if mechanism == "a":
            return self._in_any(self._addresses(target), v4, v6)
        mx = self._ask(target, "MX").records
        if len(mx) > MAX_NAMES_PER_MECHANISM:
            raise _Abort("permerror", f"{target} has more than {MAX_NAMES_PER_MECHANISM} MX records")
        for record in mx:
            host = record.split()[-1] if record.split() else ""
            if host and host != "." and self._in_any(self._addresses_quiet(host), v4, v6):
                return True
        return False

    def _addresses_quiet(self, name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """Addresses of an MX host: errors count, emptiness is not a void lookup (section 4.6.4)."""
        answer = self.resolver.query(name, "A" if self.ip.version == 4 else "AAAA")
        if answer.status in ("SERVFAIL", "TIMEOUT"):
            raise _Abort("temperror", f"DNS {answer.status} for {name}")
        found = []
        for text in answer.records:
            try:
                found.append(ipaddress.ip_address(text))
            except ValueError:
                continue
        return found

    def _in_any(self, addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address], v4: int, v6: int) -> bool:
        prefix = v4 if self.ip.version == 4 else v6
        for address in addresses:
            if address.version != self.ip.version:
                continue
            if self.ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False):
                return True
        return False

    def _ip_matches(self, mechanism: str, spec: str, domain: str) -> bool:
        version = 4 if mechanism == "ip4" else 6
        try:
            network = ipaddress.ip_network(spec, strict=False)
        except ValueError:
            raise _Abort("permerror", f"bad network '{mechanism}:{spec}' in {domain}") from None
        if network.version != version or ("/" in spec and not spec.rsplit("/", 1)[1].isdigit()):
            raise _Abort("permerror", f"bad network '{mechanism}:{spec}' in {domain}")
        return self.ip.version == version and self.ip in network

    def _include(self, target: str) -> bool:
        result, _, reason = self._nested(target)
        if result == "pass":
            return True
        if result in ("fail", "softfail", "neutral"):
            return False
        if result == "none":
            raise _Abort("permerror", f"include:{target} has no SPF record")
        raise _Abort(result, reason)

    def _ptr(self, target: str) -> bool:
        answer = self.resolver.query(_reverse_name(self.ip), "PTR")
        if answer.status in ("SERVFAIL", "TIMEOUT"):
            return False  # section 5.5: a PTR error is no match, not an error
        target = target.lower().rstrip(".")
        for name in answer.records[:MAX_NAMES_PER_MECHANISM]:
            name = name.lower().rstrip(".")
            if not (name == target or name.endswith("." + target)):
                continue
            if self.ip in self._addresses_quiet(name):
                return True
        return False

    # --- macros (section 7) ------------------------------------------------------------------------

    def _expand(self, spec: str, domain: str, required: bool = False) -> str:
        if required and not spec:
            raise _Abort("permerror", f"missing domain-spec in {domain}")
        local, _, sender_domain = self.sender.rpartition("@")
        values = {
            "s": self.sender, "l": local or "postmaster", "o": sender_domain, "d": domain,
            "i": _dotted_ip(self.ip), "p": "unknown", "v": "in-addr" if self.ip.version == 4 else "ip6",
            "h": self.helo,
        }

        def replace(match: re.Match[str]) -> str:
            letter, digits, reverse, delimiters, literal = match.groups()
            if literal is not None:
                if literal in "%_-":
                    return {"%": "%", "_": " ", "-": "%20"}[literal]
                raise _Abort("permerror", f"bad macro '%{literal}' in {domain}")
            value = values.get(letter.lower())
            if value is None:
                raise _Abort("permerror", f"macro '%{{{letter}}}' is not allowed here ({domain})")
            parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
            if reverse:
                parts.reverse()
            if digits:
                keep = int(digits)
                if keep == 0:
                    raise _Abort("permerror", f"macro '%{{{letter}0}}' in {domain}")
                parts = parts[-keep:]
            text = ".".join(parts)
            return urllib.parse.quote(text, safe="") if letter.isupper() else text

        if "%" in spec:
            if re.search(r"(?<!%)(?:%%)*%$", spec):
                raise _Abort("permerror", f"a lone '%' ends '{spec}' in {domain}")
            spec = _MACRO.sub(replace, spec)
        return _truncate(spec)


def _valid_domain(domain: str) -> bool:
    labels = domain.rstrip(".").split(".")
    return len(labels) >= 2 and len(domain) <= 253 and all(_LABEL.match(label) for label in labels)


def _truncate(name: str) -> str:
    """Section 7.3: drop labels from the left until the name fits in 253 characters."""
    name = name.rstrip(".")
    while len(name) > 253 and "." in name:
        name = name.split(".", 1)[1]
    return name


def _dual_cidr(argument: str, domain: str) -> tuple[str, int, int]:
    match = _DUAL_CIDR.match(argument)
    assert match is not None  # the pattern matches any text
    name, v4, v6 = match.group(1), match.group(2), match.group(3)
    v4_len = int(v4) if v4 is not None else 32
    v6_len = int(v6) if v6 is not None else 128
    if v4_len > 32 or v6_len > 128 or (v4 is not None and v4.startswith("0") and v4 != "0"):
        raise _Abort("permerror", f"bad prefix length in '{argument}' in {domain}")
    return name, v4_len, v6_len


def _dotted_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


def _reverse_name(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return ip.reverse_pointer


def client_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client IP as an address (an IPv4-mapped IPv6 address as IPv4), or None if it is not one."""
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]").removeprefix("IPv6:"))
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def check_host(resolver: Resolver, ip: str, mail_from: str | None, helo: str | None) -> SpfResult:
    """SPF for the MAIL FROM identity; for a null reverse path, ``postmaster@HELO`` (section 2.4)."""
    address = client_address(ip)
    helo = (helo or "").strip().lower().rstrip(".")
    sender = (mail_from or "").strip().strip("<>").lower()
    identity = "mailfrom"
    if not sender:
        sender, identity = f"postmaster@{helo}", "helo"
    elif "@" not in sender:
        sender = f"postmaster@{sender}"
    domain = sender.rpartition("@")[2]
    if address is None:
        return SpfResult("permerror", domain, reason=f"client address '{ip}' is not an IP address",
                         identity=identity)
    if not domain:
        return SpfResult("none", domain, reason="no domain to check", identity=identity)
    check = _Check(resolver, address, sender, helo)
    try:
        result, mechanism, reason = check.check_host(domain)
    except _Abort as abort:
        result, mechanism, reason = abort.result, "", abort.reason
    return SpfResult(result, domain, mechanism, reason, identity, check.budget.lookups, check.budget.void)
