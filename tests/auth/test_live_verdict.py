"""Live authentication end to end: verdicts, the Authentication-Results header, signals in the pipeline,
ARC overrides for trusted sealers, DNS blocklists, the async API and ``mailwarden auth check``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from conftest import Keys, arc_seal, message, sign
from typer.testing import CliRunner

from mailwarden.auth import evaluate, evaluate_async
from mailwarden.auth.dnsbl import ip_query_name
from mailwarden.authresults import parse_authentication_results
from mailwarden.cli import app
from mailwarden.config import AuthSettings, OrgConfig, org_from_dict
from mailwarden.dns import LiveResolver
from mailwarden.errors import ConfigError
from mailwarden.message import Envelope, parse
from mailwarden.pipeline import Context, scan

GOOD = Envelope(client_ip="192.0.2.25", helo="mail.signer.test", mail_from="bounce@signer.test")
FROM_LIST = Envelope(client_ip="198.51.100.9", helo="mail.lists.test", mail_from="bounces@lists.test")
LIST_SAW = "dkim=pass header.d=strict.test; spf=pass smtp.mailfrom=strict.test; dmarc=pass header.from=strict.test"
OURS = "mx1.acme-corp.test"

DNSBL = {"dnsbl": [
    {"zone": "bl.test", "kind": "ip",
     "codes": {"127.0.0.2": "spam source", "127.0.0.3": "botnet", "127.0.0.4": "open proxy"}},
    {"zone": "dbl.test", "kind": "domain"},
]}


def org(**auth: object) -> OrgConfig:
    return org_from_dict({"organization": {"domains": ["acme-corp.test"], "authserv_id": OURS}, "auth": auth})


def ids(raw: bytes, envelope: Envelope, resolver: LiveResolver, config: OrgConfig | None = None) -> set[str]:
    config = config or org()
    context = Context(org=config, resolver=resolver)
    result = scan(parse(raw, envelope, authserv_id=config.authserv_id), context)
    return {s.id for s in result.signals}


def forwarded(keys: Keys, sealer: str = "lists.test") -> bytes:
    original = sign(message(from_="CEO <ceo@strict.test>"), keys, domain="strict.test")
    return arc_seal(original.replace(b"Thanks\r\n", b"Thanks\r\n-- \r\nfooter\r\n"), keys, sealer, LIST_SAW)


def test_an_authenticated_message(keys: Keys, resolver: LiveResolver) -> None:
    verdict = evaluate(sign(message(), keys), GOOD, resolver)
    assert (verdict.spf.result, [d.result for d in verdict.dkim], verdict.dmarc.result) == ("pass", ["pass"], "pass")
    assert verdict.dmarc.alignment["dkim"] and verdict.dmarc.alignment["spf"]
    assert ids(sign(message(), keys), GOOD, resolver) == {"auth.dmarc_pass"}


def test_a_spoof_of_a_reject_domain(resolver: LiveResolver) -> None:
    spoof = Envelope(client_ip="203.0.113.66", helo="mx.evil.test", mail_from="ceo@signer.test")
    verdict = evaluate(message(), spoof, resolver)
    assert (verdict.spf.result, verdict.dmarc.result, verdict.dmarc.policy) == ("fail", "fail", "reject")
    assert {"auth.spf_fail", "auth.dmarc_fail", "auth.dmarc_reject_policy", "auth.unauthenticated"} <= \
        ids(message(), spoof, resolver)


def test_a_spoof_of_our_own_domain(resolver: LiveResolver) -> None:
    raw = message(from_="Finance <finance@acme-corp.test>")
    found = ids(raw, Envelope(client_ip="203.0.113.66", helo="x", mail_from="finance@acme-corp.test"), resolver)
    assert {"auth.own_domain_spoof", "auth.dmarc_fail", "auth.dmarc_quarantine_policy"} <= found


def test_upstream_authentication_results_are_not_trusted(resolver: LiveResolver) -> None:
    raw = message(headers=(("Authentication-Results", f"{OURS}; spf=pass smtp.mailfrom=signer.test; dkim=pass "
                                                      "header.d=signer.test; dmarc=pass header.from=signer.test"),))
    found = ids(raw, Envelope(client_ip="203.0.113.66", helo="x", mail_from="ceo@signer.test"), resolver)
    assert "auth.dmarc_fail" in found and "auth.dmarc_pass" not in found


def test_a_tampered_message_fails_dkim_and_dmarc(keys: Keys, resolver: LiveResolver) -> None:
    raw = sign(message(), keys).replace(b"Friday", b"today, to our new account")
    found = ids(raw, Envelope(client_ip="203.0.113.66", helo="x", mail_from="ceo@signer.test"), resolver)
    assert {"auth.dkim_fail", "auth.dmarc_fail", "auth.dmarc_reject_policy"} <= found


def test_arc_overrides_dmarc_only_for_a_trusted_sealer(keys: Keys, resolver: LiveResolver) -> None:
    raw = forwarded(keys)
    untrusted = evaluate(raw, FROM_LIST, resolver)
    assert (untrusted.dmarc.result, untrusted.arc.result, untrusted.arc_override) == ("fail", "pass", "")
    assert {"auth.dmarc_fail", "auth.dmarc_reject_policy"} <= ids(raw, FROM_LIST, resolver)

    trusted = evaluate(raw, FROM_LIST, resolver, AuthSettings(trusted_arc_sealers=("lists.test",)))
    assert (trusted.dmarc.result, trusted.arc_override) == ("fail", "lists.test")
    found = ids(raw, FROM_LIST, resolver, org(trusted_arc_sealers=["lists.test"]))
    assert "auth.arc_override" in found
    assert not found & {"auth.dmarc_fail", "auth.dmarc_reject_policy", "auth.unauthenticated"}
    assert "arc override by trusted sealer lists.test" in trusted.header(OURS)


def test_arc_from_another_sealer_or_a_broken_chain_overrides_nothing(keys: Keys, resolver: LiveResolver) -> None:
    settings = AuthSettings(trusted_arc_sealers=("lists.test",))
    other = evaluate(forwarded(keys, "evil-lists.test"), FROM_LIST, resolver, settings)
    assert (other.arc.result, other.arc_override) == ("pass", "")
    broken = evaluate(forwarded(keys).replace(b"footer", b"f00ter"), FROM_LIST, resolver, settings)
    assert (broken.arc.result, broken.arc_override) == ("fail", "")


def test_a_trusted_sealer_that_saw_no_pass_vouches_for_nothing(keys: Keys, resolver: LiveResolver) -> None:
    original = message(from_="CEO <ceo@strict.test>")
    raw = arc_seal(original, keys, "lists.test",
                   "spf=fail smtp.mailfrom=strict.test; dmarc=fail header.from=strict.test")
    verdict = evaluate(raw, FROM_LIST, resolver, AuthSettings(trusted_arc_sealers=("lists.test",)))
    assert (verdict.arc.result, verdict.arc_override) == ("pass", "")


def test_dns_failure_is_a_temperror_signal(blackhole: str) -> None:
    with LiveResolver(blackhole, timeout=0.2) as live:
        started = time.monotonic()
        found = ids(message(), GOOD, live)
        assert time.monotonic() - started < 3  # bounded by the DNS timeout, questions asked at once
    assert "auth.temperror" in found and "auth.dmarc_fail" not in found


def test_broken_records_are_a_permerror_signal(resolver: LiveResolver) -> None:
    envelope = Envelope(client_ip="192.0.2.1", helo="x", mail_from="x@two.spf.test")
    assert "auth.permerror" in ids(message(from_="x@nodmarc.test"), envelope, resolver)


def test_the_header_is_rfc_8601_and_reads_back(keys: Keys, resolver: LiveResolver) -> None:
    verdict = evaluate(sign(message(), keys), GOOD, resolver)
    header = verdict.header(OURS)
    parsed = parse_authentication_results(header)
    assert parsed.authserv_id == OURS
    assert [(r.method, r.result) for r in parsed.results] == [("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass")]
    assert parsed.first("dkim") is not None and parsed.first("dkim").prop("header.d") == "signer.test"  # type: ignore[union-attr]
    assert parsed.first("spf").prop("smtp.mailfrom") == "bounce@signer.test"  # type: ignore[union-attr]
    assert parsed.first("dmarc").prop("policy.published-domain-policy") == "reject"  # type: ignore[union-attr]


def test_our_own_header_read_back_offline_gives_the_same_signals(keys: Keys, resolver: LiveResolver) -> None:
    spoof = Envelope(client_ip="203.0.113.66", helo="x", mail_from="ceo@signer.test")
    header = evaluate(message(), spoof, resolver).header(OURS)
    stored = f"Authentication-Results: {header}\r\n".encode() + message()
    offline = ids(stored, Envelope(), resolver)  # no client IP: the trusted header is read
    assert {"auth.spf_fail", "auth.dmarc_fail", "auth.dmarc_reject_policy", "auth.unauthenticated"} <= offline

    settings = org(trusted_arc_sealers=["lists.test"])
    header = evaluate(forwarded(keys), FROM_LIST, resolver, settings.auth).header(OURS)
    stored = f"Authentication-Results: {header}\r\n".encode() + forwarded(keys)
    assert "auth.arc_override" in ids(stored, Envelope(), resolver, settings)
    assert "auth.dmarc_fail" not in ids(stored, Envelope(), resolver, settings)


def test_hostile_values_cannot_break_the_header(resolver: LiveResolver) -> None:
    envelope = Envelope(client_ip="192.0.2.1", helo="x", mail_from='"a;b (c)" dmarc=pass"@evil.test')
    header = evaluate(message(), envelope, resolver).header(OURS)
    parsed = parse_authentication_results(header)
    assert [r.method for r in parsed.results] == ["spf", "dkim", "dmarc"]
    assert parsed.first("dmarc").result == "fail"  # type: ignore[union-attr]


# --- DNS blocklists ---------------------------------------------------------------------------------

def test_query_names() -> None:
    assert ip_query_name("192.0.2.99", "bl.test") == "99.2.0.192.bl.test"
    assert ip_query_name("2001:db8::99", "bl.test") == \
        "9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test"
    assert ip_query_name("not an ip", "bl.test") is None


def test_a_listed_client_ip_with_its_meanings(resolver: LiveResolver) -> None:
    settings = org(**DNSBL).auth
    verdict = evaluate(message(), Envelope("192.0.2.99", "x", "a@signer.test"), resolver, settings)
    assert [(h.target, h.value, h.codes, h.meanings) for h in verdict.dnsbl] == \
        [("client_ip", "192.0.2.99", ("127.0.0.2", "127.0.0.4"), ("spam source", "open proxy"))]
    v6 = evaluate(message(), Envelope("2001:db8::99", "x", "a@signer.test"), resolver, settings)
    assert [(h.value, h.meanings) for h in v6.dnsbl] == [("2001:db8::99", ("botnet",))]


def test_error_codes_and_unlisted_addresses_are_no_listing(resolver: LiveResolver) -> None:
    settings = org(**DNSBL).auth
    for ip in ("192.0.2.98", "192.0.2.97"):
        assert evaluate(message(), Envelope(ip, "x", "a@signer.test"), resolver, settings).dnsbl == ()


def test_sender_and_link_domains(resolver: LiveResolver) -> None:
    raw = message(from_="x@bad-sender.test", body="Log in at https://www.evil-link.test/login and "
                  "https://fine.test/\r\n")
    found = ids(raw, Envelope("192.0.2.1", "x", "x@bad-sender.test"), resolver, org(**DNSBL))
    assert {"auth.dnsbl_sender_domain", "auth.dnsbl_link_domain"} <= found
    assert "auth.dnsbl_client_ip" not in found
    offline = ids(raw, Envelope(), resolver, org(**DNSBL))  # offline scans check domains too
    assert {"auth.dnsbl_sender_domain", "auth.dnsbl_link_domain"} <= offline


def test_the_zone_factor_scales_the_weight(resolver: LiveResolver) -> None:
    config = org(dnsbl=[{"zone": "bl.test", "factor": 0.5}])
    listed_ip = Envelope("192.0.2.99", "x", "a@signer.test")
    result = scan(parse(message(), listed_ip), Context(org=config, resolver=resolver))
    listed = [s for s in result.signals if s.id == "auth.dnsbl_client_ip"]
    assert [s.score for s in listed] == [15]


@pytest.mark.parametrize("auth", [
    {"dnsbl": [{"kind": "ip"}]}, {"dnsbl": [{"zone": "x.test", "kind": "asn"}]},
    {"dnsbl": [{"zone": "x.test", "targets": ["body"]}]}, {"dnsbl": [{"zone": "x.test", "codes": ["127.0.0.2"]}]},
    {"trusted_arc_sealers": "lists.test"}, {"enforce_dmarc": "yes"}, {"dnsbl": {"zone": "x"}},
])
def test_bad_auth_config(auth: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        org_from_dict({"auth": auth})


def test_enforcement_can_be_switched_off(resolver: LiveResolver) -> None:
    spoof = Envelope(client_ip="203.0.113.66", helo="x", mail_from="ceo@signer.test")
    found = ids(message(), spoof, resolver, org(enforce_dmarc=False))
    assert "auth.dmarc_fail" in found and "auth.dmarc_reject_policy" not in found


# --- async and the command line -------------------------------------------------------------------

def test_evaluate_async_does_not_block_other_messages(keys: Keys, dns_server: str, blackhole: str) -> None:
    async def run() -> tuple[list[str], int]:
        done: list[str] = []
        ticks = 0
        with LiveResolver(blackhole, timeout=0.5) as dead, LiveResolver(dns_server) as live:
            async def slow() -> None:
                verdict = await evaluate_async(message(), GOOD, dead)
                done.append("slow:" + verdict.dmarc.result)

            async def fast() -> None:
                verdict = await evaluate_async(sign(message(), keys), GOOD, live)
                done.append("fast:" + verdict.dmarc.result)

            async def tick() -> None:
                nonlocal ticks
                for _ in range(10):
                    await asyncio.sleep(0.01)
                    ticks += 1

            await asyncio.gather(slow(), fast(), tick())
        return done, ticks

    done, ticks = asyncio.run(run())
    assert done == ["fast:pass", "slow:temperror"]
    assert ticks == 10


def test_auth_check_command(keys: Keys, dns_server: str, tmp_path: Path) -> None:
    path = tmp_path / "forwarded.eml"
    path.write_bytes(forwarded(keys))
    config = tmp_path / "org.toml"
    config.write_text('[organization]\ndomains = ["acme-corp.test"]\nauthserv_id = "mx1.acme-corp.test"\n'
                      '[auth]\ntrusted_arc_sealers = ["lists.test"]\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["auth", "check", str(path), "--client-ip", "198.51.100.9", "--helo",
                                      "mail.lists.test", "--mail-from", "bounces@lists.test", "--resolver",
                                      dns_server, "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["spf"]["result"] == "pass" and out["spf"]["domain"] == "lists.test"
    assert [(d["result"], d["domain"], d["selector"]) for d in out["dkim"]] == [("fail", "strict.test", "rsa")]
    assert (out["dmarc"]["result"], out["dmarc"]["policy"], out["dmarc"]["domain"]) == ("fail", "reject", "strict.test")
    assert out["dmarc"]["alignment"] == {"spf": False, "dkim": False, "aspf": "strict", "adkim": "strict",
                                         "domain": ""}
    assert out["dmarc"]["arc_override"] == "lists.test"
    assert out["arc"] == {"result": "pass", "sealers": ["lists.test"], "instances": 1, "reason": "success"}
    assert out["dnsbl"] == []
    assert out["authentication_results"].startswith("mx1.acme-corp.test;")


def test_auth_check_uses_the_environment_resolver(keys: Keys, dns_server: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(sign(message(), keys))
    monkeypatch.setenv("MAILWARDEN_RESOLVER", dns_server)
    result = CliRunner().invoke(app, ["auth", "check", str(path), "--client-ip", "192.0.2.25", "--mail-from",
                                      "bounce@signer.test", "--format", "text"])
    assert result.exit_code == 0, result.output
    assert "dmarc  pass" in result.output and "Authentication-Results: mailwarden;" in result.output


@pytest.mark.parametrize("args", [["--client-ip", "999.1.1.1"], ["--client-ip", "192.0.2.1", "--resolver", "x:0"]])
def test_auth_check_usage_errors(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(message())
    result = CliRunner().invoke(app, ["auth", "check", str(path), *args])
    assert result.exit_code == 2


def test_without_dns_an_envelope_falls_back_to_the_trusted_results() -> None:
    raw = message(headers=(("Authentication-Results", f"{OURS}; spf=fail smtp.mailfrom=signer.test; "
                                                      "dmarc=fail (p=reject) header.from=signer.test"),))
    config = org()
    context = Context.for_org(config)  # no MAILWARDEN_RESOLVER, no [dns]: no DNS at all
    result = scan(parse(raw, GOOD, authserv_id=OURS), context)
    assert {"auth.spf_fail", "auth.dmarc_fail"} <= {s.id for s in result.signals}


def test_the_config_resolver_reaches_the_pipeline(dns_server: str, keys: Keys) -> None:
    config = org_from_dict({"organization": {"authserv_id": OURS}, "dns": {"resolvers": [dns_server]}})
    result = scan(parse(sign(message(), keys), GOOD, authserv_id=OURS), Context.for_org(config))
    assert {s.id for s in result.signals} == {"auth.dmarc_pass"}


def test_too_many_arc_sets_are_refused_unverified(resolver: LiveResolver) -> None:
    seals = "".join(f"ARC-Seal: i={n}; cv=pass; a=rsa-sha256; d=lists.test; s=arc; b=AAAA\r\n" for n in range(60))
    verdict = evaluate(seals.encode() + message(), FROM_LIST, resolver)
    assert verdict.arc.result == "fail" and "more than 50" in verdict.arc.reason
    assert resolver.counters.queries < 10
