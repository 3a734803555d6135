"""DKIM (RSA-2048 and ed25519 signatures made here) and ARC chains, keys served by the real DNS server."""

from __future__ import annotations

from conftest import Keys, arc_seal, message, sign

from mailwarden.auth.arc import validate_chain
from mailwarden.auth.dkim import verify_signatures
from mailwarden.dns import LiveResolver

LIST_RESULTS = "dkim=pass header.d=strict.test; spf=pass smtp.mailfrom=strict.test; dmarc=pass header.from=strict.test"


def results(raw: bytes, resolver: LiveResolver) -> list[tuple[str, str, str]]:
    return [(d.result, d.domain, d.selector) for d in verify_signatures(raw, resolver)]


def test_rsa_signature_passes(keys: Keys, resolver: LiveResolver) -> None:
    found = verify_signatures(sign(message(), keys), resolver)
    assert [(d.result, d.domain, d.selector, d.algorithm) for d in found] == \
        [("pass", "signer.test", "rsa", "rsa-sha256")]


def test_ed25519_signature_passes(keys: Keys, resolver: LiveResolver) -> None:
    found = verify_signatures(sign(message(), keys, selector="ed", ed25519=True), resolver)
    assert [(d.result, d.algorithm) for d in found] == [("pass", "ed25519-sha256")]


def test_both_signatures_of_a_dual_signed_message(keys: Keys, resolver: LiveResolver) -> None:
    raw = sign(sign(message(), keys, selector="ed", ed25519=True), keys)
    assert results(raw, resolver) == [("pass", "signer.test", "rsa"), ("pass", "signer.test", "ed")]


def test_a_tampered_body_fails(keys: Keys, resolver: LiveResolver) -> None:
    for ed in (False, True):
        raw = sign(message(), keys, selector="ed" if ed else "rsa", ed25519=ed).replace(b"Friday", b"Monday")
        found = verify_signatures(raw, resolver)
        assert [(d.result, d.reason) for d in found] == [("fail", "body hash mismatch")]


def test_a_tampered_header_fails(keys: Keys, resolver: LiveResolver) -> None:
    for ed in (False, True):
        raw = sign(message(), keys, selector="ed" if ed else "rsa", ed25519=ed).replace(b"Invoice 2291",
                                                                                       b"Invoice 2292")
        assert [d.result for d in verify_signatures(raw, resolver)] == ["fail"]


def test_an_added_from_header_fails(keys: Keys, resolver: LiveResolver) -> None:
    raw = sign(message(), keys)
    raw = raw.replace(b"To: ", b"From: attacker@evil.test\r\nTo: ", 1)
    assert [d.result for d in verify_signatures(raw, resolver)] == ["fail"]


def test_keys_that_are_missing_broken_or_revoked_are_permerrors(keys: Keys, resolver: LiveResolver) -> None:
    for selector in ("missing", "badkey", "revoked"):
        raw = sign(message(), keys, selector=selector)
        found = verify_signatures(raw, resolver)
        assert [d.result for d in found] == ["permerror"], (selector, found)


def test_a_key_lookup_that_fails_is_temperror(keys: Keys, resolver: LiveResolver) -> None:
    raw = sign(message(from_="x@x.broken.test"), keys, domain="x.broken.test")
    found = verify_signatures(raw, resolver)
    assert [(d.result, d.domain) for d in found] == [("temperror", "x.broken.test")]


def test_a_malformed_signature_is_permerror(resolver: LiveResolver) -> None:
    raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=signer.test\r\n" + message()
    assert [d.result for d in verify_signatures(raw, resolver)] == ["permerror"]


def test_an_unsigned_message_has_no_results(resolver: LiveResolver) -> None:
    assert verify_signatures(message(), resolver) == ()


def forwarded(keys: Keys, sealer: str = "lists.test") -> bytes:
    """Signed by strict.test, then changed by a list (footer) that records what it saw and seals."""
    original = sign(message(from_="CEO <ceo@strict.test>"), keys, domain="strict.test")
    changed = original.replace(b"Thanks\r\n", b"Thanks\r\n-- \r\nThe list footer\r\n")
    return arc_seal(changed, keys, sealer, LIST_RESULTS)


def test_an_arc_sealed_forwarded_message_passes(keys: Keys, resolver: LiveResolver) -> None:
    raw = forwarded(keys)
    assert [d.result for d in verify_signatures(raw, resolver)] == ["fail"]  # the list broke DKIM
    found = validate_chain(raw, resolver)
    assert (found.result, found.sealers, found.instances) == ("pass", ("lists.test",), 1)
    assert found.latest_results is not None and found.latest_results.first("dmarc") is not None


def test_a_two_hop_chain(keys: Keys, resolver: LiveResolver) -> None:
    raw = arc_seal(forwarded(keys, "relay.test"), keys, "lists.test", "arc=pass; dmarc=pass header.from=strict.test")
    found = validate_chain(raw, resolver)
    assert (found.result, found.sealers, found.instances) == ("pass", ("lists.test", "relay.test"), 2)


def test_a_change_after_sealing_breaks_the_chain(keys: Keys, resolver: LiveResolver) -> None:
    raw = forwarded(keys).replace(b"The list footer", b"Pay to IBAN XX00")
    assert validate_chain(raw, resolver).result == "fail"


def test_a_seal_key_lookup_that_fails_is_temperror(keys: Keys, blackhole: str) -> None:
    with LiveResolver(blackhole, timeout=0.2) as live:
        assert validate_chain(forwarded(keys), live).result == "temperror"


def test_no_arc_headers(resolver: LiveResolver) -> None:
    assert validate_chain(message(), resolver).result == "none"
