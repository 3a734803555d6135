"""Lookalikes of own and partner domains in the sender headers and links: what must and must not fire."""

from pathlib import Path

from mailbuilder import build, ids

from mailwarden.analyzers import lookalike
from mailwarden.config import load_org
from mailwarden.message import parse
from mailwarden.pipeline import Context, scan
from mailwarden.signals import Verdict

SCENARIOS = Path(__file__).resolve().parents[2].parent / "shared" / "scenarios"
ORG = load_org(SCENARIOS / "org.toml")
CONTEXT = Context.for_org(ORG)
OURS = "mx1.marlowfenwick.co.uk"


def analyze(message):  # type: ignore[no-untyped-def]
    return lookalike.analyze(message, CONTEXT)


def test_a_sender_imitating_our_own_domain() -> None:
    found = analyze(build(from_="Adrian Kell <adrian.kell@marlowfenvvick.co.uk>"))
    assert ids(found) == {"sender.lookalike_own_domain"}
    evidence = found[0].evidence
    assert (evidence["imitated"], evidence["technique"], evidence["headers"]) == \
        ("marlowfenwick.co.uk", "homoglyph", ["From"])
    assert found[0].score == 50
    assert "marlowfenvvick.co.uk imitates our own domain marlowfenwick.co.uk" in found[0].detail


def test_a_sender_imitating_a_partner() -> None:
    found = analyze(build(from_="Castlegate Accounts <accounts@castlegatepolymer.co.uk>"))
    assert ids(found) == {"sender.lookalike_partner"}
    assert found[0].evidence["owner"] == "Castlegate Polymers Ltd"
    assert found[0].evidence["technique"] == "omission"


def test_the_engines_confidence_scales_the_weight() -> None:
    sure = analyze(build(from_="x@xn--veltr-electronics-3co.de"))[0]
    combosquat = analyze(build(from_="x@castlegate-billing-portal.com"))[0]
    assert sure.score == 45 and combosquat.score < sure.score


def test_reply_to_a_lookalike_of_the_partner_who_wrote() -> None:
    found = analyze(build(from_="Billing <billing@ashdownpryce.co.uk>",
                          headers={"Reply-To": "accounts@ashdownpryce.co"}))
    assert ids(found) == {"sender.reply_to_lookalike"}
    assert found[0].evidence["technique"] == "tld_swap"


def test_reply_to_the_same_lookalike_as_from_counts_once() -> None:
    found = analyze(build(from_="a@ledger-line.io", headers={"Reply-To": "b@ledger-line.io"}))
    assert ids(found) == {"sender.lookalike_partner"}
    assert found[0].evidence["headers"] == ["From", "Reply-To"]


def test_return_path_and_dkim_alone_are_weaker_evidence() -> None:
    message = build(from_="Lucy <lucy.brennan@castlegatepolymers.co.uk>", authserv_id=OURS, headers={
        "Return-Path": "<bounce@castlegatepolymer.co.uk>",
        "Authentication-Results": f"{OURS}; dkim=pass header.d=castlegatepolymer.onmicrosoft.com"})
    found = lookalike.analyze(message, CONTEXT)
    assert ids(found) == {"sender.envelope_lookalike"}
    assert found[0].evidence["headers"] in (["Return-Path"], ["DKIM d="])


def test_links_to_lookalikes() -> None:
    found = analyze(build(body="Sign in: https://ledgerline.io.account-verify.net/login and "
                               "https://mfinstruments-it.com/mfa"))
    assert ids(found) == {"url.lookalike_partner", "url.lookalike_own_domain"}
    partner = next(s for s in found if s.id == "url.lookalike_partner")
    assert partner.evidence["technique"] == "subdomain"
    assert partner.evidence["url"].startswith("https://ledgerline.io.account-verify.net/")


def test_a_link_to_the_senders_own_lookalike_counts_half() -> None:
    found = analyze(build(from_="it@mfinstruments-it.com", body="https://mfinstruments-it.com/enrol"))
    scores = {s.id: s.score for s in found}
    assert scores["url.lookalike_own_domain"] < 35 / 2 + 1


def test_own_partner_and_unrelated_domains_raise_nothing() -> None:
    for sender in ("adrian.kell@marlowfenwick.co.uk", "noreply@veltro.eu", "orders@castlegate-polymers.com",
                   "office@veltron-electrical.co.uk", "noreply@github.com"):
        message = build(from_=sender, headers={"Reply-To": "support+1@bramwellfreight.zendesk.com"},
                        body="Tracking: https://www.dhl.com/track and https://shop.veltro.eu/orders/1")
        assert analyze(message) == [], sender


def test_without_protected_domains_nothing_is_checked() -> None:
    assert lookalike.analyze(build(from_="x@marlowfenvvick.co.uk"), Context()) == []


def test_the_declared_signals_cover_what_is_emitted_and_have_weights() -> None:
    weights = CONTEXT.scoring.weights
    assert all(signal in weights for signal in lookalike.SIGNALS)


def test_scenario_lookalike_messages_are_stopped_and_the_look_alike_contractor_is_not() -> None:
    for name in ("msg-002.eml", "msg-012.eml", "msg-015.eml", "msg-023.eml", "msg-024.eml"):
        result = scan(parse((SCENARIOS / "messages" / name).read_bytes(), authserv_id=OURS), CONTEXT)
        assert any("lookalike" in s.id for s in result.signals), name
        assert result.verdict in (Verdict.QUARANTINE, Verdict.REJECT), name
    benign = scan(parse((SCENARIOS / "messages" / "msg-007.eml").read_bytes(), authserv_id=OURS), CONTEXT)
    assert not any("lookalike" in s.id for s in benign.signals)
