"""Learned profiles keep learning: delivered mail is folded into the profiles, saved in batches, and scanned
against; a partner's new normal is learned, an impersonator's name is not."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from gwharness import GatewayFactory, Recorder, RunningGateway
from gwmail import RCPT, build, parsed, send, warned

from mailwarden.gateway.learner import ProfileLearner
from mailwarden.gateway.receive import Transaction, as_received
from mailwarden.message import Envelope, parse
from mailwarden.pipeline import Context
from mailwarden.profiles import Profiles
from mailwarden.store.store import Store

PARTNER = "billing@globex.gw.test"


def from_partner(n: int, reply_to: str | None = None, urgent: bool = False) -> bytes:
    headers = (f"Reply-To: Globex Accounts <{reply_to}>",) if reply_to else ()
    body = "URGENT - action required immediately. Please respond ASAP." if urgent else \
        "Hello,\r\nthe delivery note is below.\r\nRegards"
    return build(f"Globex Billing <{PARTNER}>", f"Delivery note {n}", body, headers=headers,
                 message_id=f"<n{n}@globex.gw.test>")


def signals_of(delivered: bytes) -> str:
    return " ".join(str(parsed(delivered)["X-Mailwarden-Signals"]).split())


def wait_until(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_partners_new_normal_is_learned(gateway: RunningGateway, downstream: Recorder) -> None:
    learner = gateway.gateway.learner
    assert learner is not None
    assert send(gateway.smtp_port, PARTNER, from_partner(1))[0] == 250
    wait_until(lambda: learner.saved >= 1)
    assert Store(gateway.engine).load_profiles().domain("gw.test") is not None  # .test: gw.test is registrable

    new_reply_to = "accounts@globex-billing.example"
    assert send(gateway.smtp_port, PARTNER, from_partner(2, new_reply_to, urgent=True))[0] == 250
    first = downstream.wait_for(2)[1]
    assert "bec.reply_to_diversion" in signals_of(first.data)  # new: flagged, and with the urgency a warning
    assert parsed(first.data)["X-Mailwarden-Verdict"] == "warn"
    wait_until(lambda: learner.saved >= 2)
    stored = Store(gateway.engine).load_profiles().domain("gw.test")
    assert stored is not None and "globex-billing.example" in stored.reply_to_domains and stored.count == 2

    assert send(gateway.smtp_port, PARTNER, from_partner(3, new_reply_to, urgent=True))[0] == 250
    again = downstream.wait_for(3)[2]
    assert "bec.reply_to_diversion" not in signals_of(again.data)  # learned: the partner's new normal
    assert parsed(again.data)["X-Mailwarden-Verdict"] == "deliver"


def test_a_warning_about_a_borrowed_name_is_not_learned(gateway: RunningGateway, downstream: Recorder) -> None:
    learner = gateway.gateway.learner
    assert learner is not None
    assert send(gateway.smtp_port, "info@promo.gw.test", warned())[0] == 250
    assert parsed(downstream.wait_for(1)[0].data)["X-Mailwarden-Verdict"] == "warn"
    time.sleep(0.5)  # several save intervals
    assert learner.saved == 0 and Store(gateway.engine).load_profiles().sender("info@promo.gw.test") is None
    assert send(gateway.smtp_port, "info@promo.gw.test", warned())[0] == 250
    assert parsed(downstream.wait_for(2)[1].data)["X-Mailwarden-Verdict"] == "warn"  # still warned


def test_saves_are_batched(downstream: Recorder, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(learn_batch=3, learn_interval=60.0)
    learner = gateway.gateway.learner
    assert learner is not None
    for n in range(2):
        assert send(gateway.smtp_port, PARTNER, from_partner(n))[0] == 250
    downstream.wait_for(2)
    time.sleep(0.3)
    assert learner.saved == 0 and learner.pending == 2  # not yet: a batch is 3
    assert send(gateway.smtp_port, PARTNER, from_partner(3))[0] == 250
    wait_until(lambda: learner.saved == 3)
    assert Store(gateway.engine).load_profiles().sender(PARTNER).count == 3  # type: ignore[union-attr]
    gateway.stop()
    assert learner.pending == 0


def test_merging_adds_to_what_another_process_saved(database_url: str) -> None:
    from mailwarden.gateway.server import open_engine

    engine = open_engine(database_url)
    try:
        first = ProfileLearner(engine, Context(), batch=100, interval=60)
        second = ProfileLearner(engine, Context(), batch=100, interval=60)
        when = datetime(2026, 3, 2, tzinfo=UTC)
        first.observe(parse(from_partner(1, "a@one.example")), when)
        second.observe(parse(from_partner(2, "b@two.example")), when.replace(day=3))
        assert first.save() == 1 and second.save() == 1
        stored = Store(engine).load_profiles().sender(PARTNER)
        assert stored is not None and stored.count == 2
        assert {"one.example", "two.example"} <= stored.reply_to_domains
        assert stored.first_seen == when and stored.last_seen == when.replace(day=3)
        assert second.context.profiles.sender(PARTNER) == stored  # the scan context sees the merged profile
        assert isinstance(first.context.profiles, Profiles) and first.context.profiles.sender(PARTNER).count == 1
    finally:
        engine.dispose()


def test_the_scan_trusts_only_our_own_authentication_results() -> None:
    forged = build("Alice <alice@acme.gw.test>", "Wire today", "Please wire the amount today.",
                   headers=("Authentication-Results: mx.acme.gw.test; dkim=pass header.d=acme.gw.test; dmarc=pass",
                            "Received: from laptop ([203.0.113.9]) by smtp.acme.gw.test"))
    envelope = Envelope(client_ip="198.51.100.7", helo="relay.example", mail_from="alice@acme.gw.test")
    message = parse(forged, envelope, authserv_id="mx.acme.gw.test")
    assert message.auth_method("dkim") == ["pass"]  # the parser alone would trust the forged field
    ours = "mx.acme.gw.test; spf=fail smtp.mailfrom=acme.gw.test; dkim=none; dmarc=fail header.from=acme.gw.test"
    seen = as_received(message, ours, Transaction("198.51.100.7", "relay.example", "alice@acme.gw.test", (RCPT,)),
                       "mx.acme.gw.test")
    assert seen.auth_method("dkim") == ["none"] and seen.auth_method("dmarc") == ["fail"]
    assert [hop.ip for hop in seen.received] == ["198.51.100.7", "203.0.113.9"]  # our hop on top
    assert seen.raw == message.raw and seen.subject == message.subject
