"""Authentication once per message: the gateway's live verdict goes to the auth analyzer with the scan
(``Context.with_auth``) instead of being evaluated a second time, and the signals are the same."""

from __future__ import annotations

from typing import Any

import pytest
from gwharness import OWN, Recorder, RunningGateway, org_config
from gwmail import build, clean, parsed, quarantined, send, spoof, warned

from mailwarden.analyzers import auth as auth_analyzer
from mailwarden.auth import evaluate_message, results
from mailwarden.dns import LiveResolver
from mailwarden.message import Envelope, parse
from mailwarden.pipeline import Context, scan


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every live evaluation (``mailwarden.auth.results.evaluate``), by From domain: a counting wrapper."""
    seen: list[str] = []
    real = results.evaluate

    def counted(*args: Any, **kwargs: Any) -> results.AuthVerdict:
        verdict = real(*args, **kwargs)
        seen.append(verdict.from_domain)
        return verdict

    monkeypatch.setattr(results, "evaluate", counted)
    return seen


def test_the_gateway_evaluates_each_message_once(gateway: RunningGateway, downstream: Recorder,
                                                 evaluations: list[str]) -> None:
    assert send(gateway.smtp_port, "alice@good.gw.test", clean())[0] == 250
    assert send(gateway.smtp_port, "info@promo.gw.test", quarantined())[0] == 250
    [delivered] = downstream.wait_for(1)
    assert evaluations == ["good.gw.test", "promo.gw.test"]
    signals = str(parsed(delivered.data)["X-Mailwarden-Signals"])
    assert "auth.dmarc_pass" in signals  # the analyzer used the gateway's verdict


CASES = [
    ("127.0.0.1", "alice@good.gw.test", clean()),  # SPF and DMARC pass
    ("127.0.0.1", "info@promo.gw.test", warned()),  # no DMARC policy
    ("127.0.0.1", "ceo@bank.gw.test", spoof()),  # SPF fail, DMARC p=reject fails
    ("198.51.100.7", "x@globex.gw.test", build("Globex <x@globex.gw.test>", "Hi", "Hello")),  # p=quarantine fails
    ("127.0.0.1", f"boss@{OWN}", build(f"Boss <boss@{OWN}>", "Pay", "Please pay today.")),  # own domain spoof
]


@pytest.mark.parametrize(("client_ip", "mail_from", "raw"), CASES)
def test_a_precomputed_verdict_gives_the_same_signals(gw_resolver: LiveResolver, client_ip: str, mail_from: str,
                                                      raw: bytes, evaluations: list[str]) -> None:
    org = org_config()
    context = Context(org=org, resolver=gw_resolver)
    message = parse(raw, Envelope(client_ip=client_ip, helo="client.gw.test", mail_from=mail_from,
                                  rcpt_to=("bob@acme.gw.test",)), authserv_id=org.authserv_id)
    live = auth_analyzer.analyze(message, context)
    assert len(evaluations) == 1
    verdict = evaluate_message(message, message.raw, gw_resolver, org.auth, org.domains)
    handed = auth_analyzer.analyze(message, context.with_auth(verdict))
    assert len(evaluations) == 2  # no evaluation of its own
    assert [(s.id, s.score, s.detail) for s in handed] == [(s.id, s.score, s.detail) for s in live]
    assert live  # every case says something about authentication
    assert scan(message, context.with_auth(verdict)).signals == scan(message, context).signals


def test_a_verdict_for_another_envelope_is_not_used(gw_resolver: LiveResolver, evaluations: list[str]) -> None:
    org = org_config()
    context = Context(org=org, resolver=gw_resolver)
    first = parse(clean(), Envelope(client_ip="127.0.0.1", mail_from="alice@good.gw.test"))
    other = parse(clean(), Envelope(client_ip="198.51.100.7", mail_from="alice@good.gw.test"))
    verdict = evaluate_message(first, first.raw, gw_resolver, org.auth, org.domains)
    signals = auth_analyzer.analyze(other, context.with_auth(verdict))
    assert len(evaluations) == 2 and any(s.id == "auth.spf_fail" for s in signals)
    assert context.auth_verdict is None  # with_auth made a copy
