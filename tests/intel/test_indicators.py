"""Indicator values, the allow-list, decay, STIX patterns, settings: the pure parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from intelharness import ORG

from mailwarden.errors import ConfigError
from mailwarden.intel.allowlist import AllowList
from mailwarden.intel.indicators import (
    IndicatorError,
    current_confidence,
    indicators_in_pattern,
    normalise,
    stable_uuid,
    stix_id,
    stix_pattern,
)
from mailwarden.intel.settings import intel_settings_from, load_intel_settings
from mailwarden.urls import normalize

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "raw", "stored"), [
    ("domain", "WWW.Evil.Example.", "www.evil.example"),
    ("domain", "*.evil.example", "evil.example"),
    ("domain", "bücher.example", "xn--bcher-kva.example"),
    ("url", "hxxp://Evil.Example/Login?a=1#frag", "http://evil.example/Login?a=1"),
    ("url", "evil.example/pay", "http://evil.example/pay"),
    ("url", "https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443/x"),
    ("ipv4", " 192.0.2.7 ", "192.0.2.7"),
    ("ipv6", "2001:0DB8:0:0::7", "2001:db8::7"),
    ("email-addr", "Billing@Evil.Example", "billing@evil.example"),
    ("file-sha256", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B856",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b856"),
])
def test_values_are_stored_the_way_the_scan_sees_them(kind: str, raw: str, stored: str) -> None:
    assert normalise(kind, raw) == stored


def test_a_stored_url_matches_the_link_the_parser_extracts() -> None:
    link = normalize("HTTP://Evil.Example:80/a/b?c=d", "href")
    assert link is not None and normalise("url", "http://evil.example/a/b?c=d") == link.url


@pytest.mark.parametrize(("kind", "raw"), [
    ("domain", "localhost"), ("domain", "192.0.2.1"), ("domain", "bad_-.example-"), ("domain", "a..b"),
    ("domain", "x" * 300 + ".example"), ("url", "ftp://evil.example/"), ("url", "javascript:alert(1)"),
    ("ipv4", "2001:db8::1"), ("ipv6", "192.0.2.1"), ("ipv4", "999.1.1.1"), ("email-addr", "no-at-sign"),
    ("email-addr", "a b@evil.example"), ("file-sha256", "abc"), ("hostname", "evil.example"),
])
def test_invalid_values_are_refused_with_a_reason(kind: str, raw: str) -> None:
    with pytest.raises(IndicatorError):
        normalise(kind, raw)


def test_the_allow_list_keeps_own_partner_and_public_services_out() -> None:
    allow = AllowList.for_org(ORG, extra=("cdn.example", "198.51.100.0/24"))
    assert "own domain" in (allow.reason("domain", "mail.acme.test") or "")
    assert "Globex Logistics" in (allow.reason("email-addr", "billing@globex-logistics.test") or "")
    assert allow.reason("url", "https://acme.test/anything?x=1") is not None
    assert "public service" in (allow.reason("domain", "login.microsoftonline.com") or "")
    assert allow.reason("url", "https://login.microsoftonline.com/") is not None
    assert allow.reason("url", "https://docs.google.com/forms/d/e/abc/viewform") is None  # a page of its own
    assert allow.reason("email-addr", "scammer@gmail.com") is None  # an address at free mail is publishable
    assert allow.reason("domain", "gmail.com") is not None
    assert allow.reason("ipv4", "10.1.2.3") is not None and allow.reason("ipv6", "::1") is not None
    assert allow.reason("ipv4", "198.51.100.9") is not None and allow.reason("domain", "x.cdn.example") is not None
    assert allow.reason("ipv4", "203.0.113.5") is None
    assert allow.reason("file-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert allow.allows("domain", "evil.example")


def test_confidence_decays_to_half_then_expires() -> None:
    until = T0 + timedelta(days=10)
    assert current_confidence(80, T0, until, T0) == 80
    assert current_confidence(80, T0, until, T0 + timedelta(days=5)) == 60
    assert current_confidence(80, T0, until, until - timedelta(seconds=1)) == 40
    assert current_confidence(80, T0, until, until) == 0
    assert current_confidence(80, T0, None, T0 + timedelta(days=999)) == 80


def test_ids_are_stable_and_uuid4_shaped() -> None:
    first = stix_id("domain", "evil.example")
    assert first == stix_id("domain", "evil.example") != stix_id("domain", "evil2.example")
    assert first.startswith("indicator--") and first[len("indicator--") + 14] == "4"
    assert stable_uuid("a", "b") != stable_uuid("ab")


@pytest.mark.parametrize(("kind", "value"), [
    ("domain", "evil.example"), ("url", "http://evil.example/it's\\here"), ("ipv4", "192.0.2.7"),
    ("ipv6", "2001:db8::7"), ("email-addr", "x@evil.example"), ("file-sha256", "ab" * 32)])
def test_patterns_round_trip(kind: str, value: str) -> None:
    assert indicators_in_pattern(stix_pattern(kind, value)) == [(kind, normalise(kind, value))]


def test_only_simple_patterns_are_read() -> None:
    assert indicators_in_pattern("[domain-name:value = 'a.example' OR url:value = 'http://b.example/']") == [
        ("domain", "a.example"), ("url", "http://b.example/")]
    assert indicators_in_pattern("[domain-name:value = 'a.example'] OR [ipv4-addr:value = '192.0.2.1']") == [
        ("domain", "a.example"), ("ipv4", "192.0.2.1")]
    assert indicators_in_pattern("[domain-name:value = 'a.example' AND url:value = 'http://b.example/']") == []
    assert indicators_in_pattern("[file:size > 10]") == []
    assert indicators_in_pattern("[process:name = 'evil.exe']") == []


def test_settings_are_validated_with_the_setting_named(tmp_path: Path) -> None:
    settings = intel_settings_from({
        "min_confidence": 60, "block_learned": True,
        "webhooks": [{"name": "soar", "url": "https://soar.example/h", "secret_env": "SOAR_SECRET",
                      "events": ["indicator.upserted"]}],
        "syslog": [{"name": "siem", "address": "127.0.0.1:6514", "transport": "tls", "format": "json"}],
        "pull": [{"name": "isac", "kind": "misp", "url": "http://127.0.0.1:8080/feed/"}]})
    assert settings.min_confidence == 60 and settings.webhooks[0].sink == "webhook:soar"
    assert settings.syslog[0].host_port == ("127.0.0.1", 6514) and settings.pull[0].source == "feed:isac"
    bad = [
        {"nope": 1},
        {"webhooks": [{"name": "a", "url": "http://example.com/h", "secret_env": "X"}]},
        {"webhooks": [{"name": "a", "url": "https://example.com/h"}]},
        {"webhooks": [{"name": "a", "url": "https://example.com/h", "secret_env": "X", "events": ["x.y"]}]},
        {"syslog": [{"name": "a", "address": "nohost"}]},
        {"syslog": [{"name": "a", "address": "h:514", "transport": "udp"}]},
        {"pull": [{"name": "a", "kind": "rss", "url": "https://x.example/"}]},
        {"webhooks": [{"name": "a", "url": "https://a.example/", "secret_env": "X"},
                      {"name": "a", "url": "https://b.example/", "secret_env": "X"}]},
        {"rpz_zone": "not a zone!"},
    ]
    for table in bad:
        with pytest.raises(ConfigError):
            intel_settings_from(table)
    config = tmp_path / "org.toml"
    config.write_text('[organization]\ndomains = ["acme.test"]\n[intel]\nmin_confidence = 70\n', encoding="utf-8")
    assert load_intel_settings(config).min_confidence == 70
    assert load_intel_settings(None).min_confidence == 50
