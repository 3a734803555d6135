"""The live resolver against a real DNS server: answers, caching by TTL, timeouts, bounded concurrency."""

from __future__ import annotations

import asyncio
import time

import pytest

from mailwarden.config import DnsSettings, org_from_dict
from mailwarden.dns import LiveResolver, configured_resolver, parse_server, parse_servers
from mailwarden.errors import ConfigError
from mailwarden.resolver import StaticResolver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_answers_of_each_type(resolver: LiveResolver) -> None:
    assert resolver.query("ip4.spf.test", "TXT").records == ("v=spf1 ip4:192.0.2.0/24 -all",)
    assert resolver.query("mx.spf.test", "MX").records == ("10 mail.spf.test",)
    assert resolver.query("a.spf.test", "AAAA").records == ("2001:db8::10",)
    assert resolver.query("88.2.0.192.in-addr.arpa", "PTR").records == ("mail.ptr.spf.test",)
    assert resolver.query("nothing.test", "A").status == "NXDOMAIN"
    nodata = resolver.query("mx.spf.test", "AAAA")
    assert nodata.status == "NOERROR" and nodata.records == ()


def test_long_txt_records_are_joined(resolver: LiveResolver) -> None:
    assert resolver.query("long-txt.test", "TXT").records == ("x" * 300 + "y" * 300,)


def test_cnames_are_followed_inside_and_outside_the_zone(resolver: LiveResolver) -> None:
    assert resolver.query("alias.test", "TXT").records == ("v=spf1 ip4:192.0.2.0/24 -all",)
    assert resolver.query("away.test", "TXT").records == ("v=spf1 -all",)


def test_a_zone_the_server_cannot_serve_is_servfail(resolver: LiveResolver) -> None:
    assert resolver.query("x.broken.test", "TXT").status == "SERVFAIL"
    assert resolver.counters.failures == 1


def test_positive_answers_are_cached_for_their_ttl(dns_server: str) -> None:
    clock = Clock()
    with LiveResolver(dns_server, clock=clock) as live:
        assert live.query("short-ttl.test", "TXT").records == ("short lived",)
        assert live.query("short-ttl.test", "TXT").records == ("short lived",)
        assert (live.counters.queries, live.counters.cache_hits) == (1, 1)
        clock.now += 1.5
        live.query("short-ttl.test", "TXT")
        assert live.counters.queries == 1
        clock.now += 1.0  # the record's TTL is 2 seconds
        live.query("short-ttl.test", "TXT")
        assert live.counters.queries == 2


def test_negative_answers_are_cached_for_the_soa_minimum(dns_server: str) -> None:
    clock = Clock()
    with LiveResolver(dns_server, clock=clock) as live:
        assert live.query("missing.test", "TXT").status == "NXDOMAIN"
        assert live.query("mx.spf.test", "AAAA").records == ()
        clock.now += 59
        assert live.query("missing.test", "TXT").status == "NXDOMAIN"
        live.query("mx.spf.test", "AAAA")
        assert live.counters.queries == 2
        clock.now += 2  # the SOA minimum is 60 seconds
        live.query("missing.test", "TXT")
        live.query("mx.spf.test", "AAAA")
        assert live.counters.queries == 4


def test_ttls_are_capped(dns_server: str) -> None:
    clock = Clock()
    with LiveResolver(dns_server, clock=clock, max_ttl=10) as live:
        live.query("ip4.spf.test", "TXT")
        clock.now += 11
        live.query("ip4.spf.test", "TXT")
        assert live.counters.queries == 2


def test_a_server_that_never_answers_times_out_within_the_timeout(blackhole: str) -> None:
    with LiveResolver(blackhole, timeout=0.3) as live:
        started = time.monotonic()
        assert live.query("ip4.spf.test", "TXT").status == "TIMEOUT"
        assert time.monotonic() - started < 1.5
        assert live.counters.timeouts == 1


def test_the_next_server_answers_when_the_first_does_not(blackhole: str, dns_server: str) -> None:
    with LiveResolver([blackhole, dns_server], timeout=0.3) as live:
        assert live.query("ip4.spf.test", "TXT").status == "NOERROR"


def test_concurrent_identical_questions_share_one_query(dns_server: str) -> None:
    async def ask(live: LiveResolver) -> list[str]:
        answers = await asyncio.gather(*(live.aquery("mx.spf.test", "MX") for _ in range(20)))
        return [a.status for a in answers]

    with LiveResolver(dns_server) as live:
        assert asyncio.run(ask(live)) == ["NOERROR"] * 20
        assert live.counters.queries == 1


def test_concurrency_is_bounded(blackhole: str) -> None:
    async def ask(live: LiveResolver) -> float:
        started = time.monotonic()
        await asyncio.gather(*(live.aquery(f"n{i}.test", "A") for i in range(4)))
        return time.monotonic() - started

    with LiveResolver(blackhole, timeout=0.3, max_concurrency=2) as live:
        assert asyncio.run(ask(live)) >= 0.55  # two waves of two timeouts each


def test_waiting_for_dns_does_not_block_the_event_loop(blackhole: str) -> None:
    async def run(live: LiveResolver) -> tuple[str, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            for _ in range(20):
                await asyncio.sleep(0.01)
                ticks += 1

        answer, _ = await asyncio.gather(live.aquery("ip4.spf.test", "TXT"), tick())
        return answer.status, ticks

    with LiveResolver(blackhole, timeout=0.5) as live:
        assert asyncio.run(run(live)) == ("TIMEOUT", 20)


def test_prefetch_fills_the_cache(resolver: LiveResolver) -> None:
    resolver.prefetch([("ip4.spf.test", "TXT"), ("mx.spf.test", "MX")])
    deadline = time.monotonic() + 5
    while resolver.cached("mx.spf.test", "MX") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert resolver.query("ip4.spf.test", "TXT").exists
    assert resolver.counters.queries == 2


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:5353", ("127.0.0.1", 5353)), ("127.0.0.1", ("127.0.0.1", 53)), ("[::1]:5300", ("::1", 5300)),
    ("::1", ("::1", 53)), ("dns.example:53", ("dns.example", 53)),
])
def test_server_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:0", "127.0.0.1:port", "[::1]x", ":53", ""])
def test_bad_server_addresses(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_servers(text)


def test_the_environment_sets_the_resolver(monkeypatch: pytest.MonkeyPatch, dns_server: str) -> None:
    assert isinstance(configured_resolver(DnsSettings()), StaticResolver)  # offline scans stay offline
    monkeypatch.setenv("MAILWARDEN_RESOLVER", dns_server)
    live = configured_resolver(DnsSettings(resolvers=("192.0.2.1:53",)))
    assert isinstance(live, LiveResolver) and live.servers == (parse_server(dns_server),)
    assert live.query("ip4.spf.test", "TXT").exists


def test_the_config_sets_the_resolver(dns_server: str) -> None:
    org = org_from_dict({"dns": {"resolvers": [dns_server], "timeout": 0.5, "max_concurrency": 8}})
    live = configured_resolver(org.dns)
    assert isinstance(live, LiveResolver)
    assert (live.timeout, live.max_concurrency) == (0.5, 8)


@pytest.mark.parametrize("dns", [{"resolvers": 5}, {"timeout": 0}, {"timeout": "1"}, {"max_concurrency": 0}, []])
def test_bad_dns_config(dns: object) -> None:
    with pytest.raises(ConfigError):
        org_from_dict({"dns": dns})
