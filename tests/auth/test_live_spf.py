"""SPF (RFC 7208) against the real DNS server: mechanisms, modifiers, macros, limits, errors."""

from __future__ import annotations

import pytest

from mailwarden.auth.spf import check_host
from mailwarden.dns import LiveResolver
from mailwarden.resolver import StaticResolver


@pytest.mark.parametrize(("ip", "domain", "result"), [
    ("192.0.2.1", "ip4.spf.test", "pass"),
    ("198.51.100.1", "ip4.spf.test", "fail"),
    ("2001:db8::1", "ip6.spf.test", "pass"),
    ("2001:db9::1", "ip6.spf.test", "fail"),
    ("::ffff:192.0.2.1", "ip4.spf.test", "pass"),  # an IPv4-mapped client is checked as IPv4
    ("192.0.2.10", "a.spf.test", "pass"),
    ("192.0.2.11", "a.spf.test", "fail"),
    ("2001:db8::10", "a.spf.test", "pass"),
    ("198.51.100.200", "acidr.spf.test", "pass"),  # a:host/24
    ("2001:db8:5::1234", "acidr.spf.test", "pass"),  # a:host//64
    ("2001:db8:6::1", "acidr.spf.test", "fail"),
    ("203.0.113.5", "mx.spf.test", "pass"),
    ("203.0.113.6", "mx.spf.test", "fail"),
    ("192.0.2.1", "include.spf.test", "pass"),
    ("198.51.100.1", "include.spf.test", "softfail"),  # the include did not match: ~all
    ("192.0.2.1", "redirect.spf.test", "pass"),
    ("198.51.100.1", "redirect.spf.test", "fail"),
    ("192.0.2.77", "exists.spf.test", "pass"),
    ("192.0.2.78", "exists.spf.test", "fail"),
    ("192.0.2.88", "ptr.spf.test", "pass"),
    ("192.0.2.89", "ptr.spf.test", "fail"),  # its name is not under ptr.spf.test
    ("192.0.2.1", "softfail.spf.test", "softfail"),
    ("192.0.2.1", "neutral.spf.test", "neutral"),
    ("192.0.2.1", "nospf.spf.test", "none"),
    ("192.0.2.1", "no-such-domain.spf.test", "none"),
    ("192.0.2.1", "mixed-case.spf.test", "pass"),
    ("10.9.9.9", "ten.spf.test", "pass"),  # exactly 10 lookups is allowed
])
def test_mechanisms(resolver: LiveResolver, ip: str, domain: str, result: str) -> None:
    assert check_host(resolver, ip, f"sender@{domain}", "mx.sender.example").result == result


@pytest.mark.parametrize(("domain", "why"), [
    ("two.spf.test", "2 SPF records"),
    ("unknown.spf.test", "unknown SPF mechanism"),
    ("badnet.spf.test", "bad network"),
    ("toomany.spf.test", "more than 10 DNS lookups"),
    ("includes.spf.test", "more than 10 DNS lookups"),
    ("loop.spf.test", "more than 10 DNS lookups"),
    ("void.spf.test", "more than 2 void DNS lookups"),
    ("include-none.spf.test", "has no SPF record"),
    ("redirect-none.spf.test", "has no SPF record"),
    ("macro-bad.spf.test", "not allowed"),
])
def test_permanent_errors(resolver: LiveResolver, domain: str, why: str) -> None:
    found = check_host(resolver, "192.0.2.1", f"sender@{domain}", "mx.sender.example")
    assert found.result == "permerror"
    assert why in found.reason


def test_two_void_lookups_are_allowed(resolver: LiveResolver) -> None:
    found = check_host(resolver, "192.0.2.1", "sender@void2.spf.test", "mx.sender.example")
    assert (found.result, found.void_lookups) == ("pass", 2)


def test_the_lookup_limit_counts_cached_answers_too(resolver: LiveResolver) -> None:
    check_host(resolver, "192.0.2.1", "x@toomany.spf.test", "h")
    assert check_host(resolver, "192.0.2.1", "x@toomany.spf.test", "h").result == "permerror"
    ten = check_host(resolver, "192.0.2.1", "x@ten.spf.test", "h")
    assert (ten.result, ten.lookups) == ("pass", 10)


@pytest.mark.parametrize(("ip", "sender", "helo", "result"), [
    ("192.0.2.55", "alice@macro.spf.test", "h", "pass"),  # %{l}.%{ir}.%{v}.%{d2}
    ("192.0.2.56", "alice@macro.spf.test", "h", "fail"),
    ("192.0.2.1", "john-doe@macro-delim.spf.test", "h", "pass"),  # %{l1r-}
    ("192.0.2.1", "jane-doe@macro-delim.spf.test", "h", "fail"),
    ("192.0.2.1", "x@macro-helo.spf.test", "relay.example", "pass"),  # %{h}
])
def test_macros(resolver: LiveResolver, ip: str, sender: str, helo: str, result: str) -> None:
    assert check_host(resolver, ip, sender, helo).result == result


def test_a_null_reverse_path_checks_the_helo_identity(resolver: LiveResolver) -> None:
    found = check_host(resolver, "192.0.2.1", "", "ip4.spf.test")
    assert (found.result, found.identity, found.domain) == ("pass", "helo", "ip4.spf.test")


def test_dns_failure_is_temperror(resolver: LiveResolver) -> None:
    assert check_host(resolver, "192.0.2.1", "s@temp.spf.test", "h").result == "temperror"
    assert check_host(resolver, "192.0.2.1", "s@x.broken.test", "h").result == "temperror"


def test_timeout_is_temperror(blackhole: str) -> None:
    with LiveResolver(blackhole, timeout=0.2) as live:
        found = check_host(live, "192.0.2.1", "s@ip4.spf.test", "h")
    assert found.result == "temperror" and "TIMEOUT" in found.reason


def test_a_client_address_that_is_not_an_ip() -> None:
    assert check_host(StaticResolver(), "not-an-ip", "s@example.org", "h").result == "permerror"


def test_the_in_memory_resolver_serves_the_same_code() -> None:
    static = StaticResolver({("example.org", "TXT"): ("v=spf1 ip4:192.0.2.0/24 -all",)})
    assert check_host(static, "192.0.2.9", "s@example.org", "h").result == "pass"
