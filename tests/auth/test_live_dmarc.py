"""The DMARC table (RFC 7489): every case's records are served by the real DNS server."""

from __future__ import annotations

import pytest
from dmarc_cases import CASES, inputs

from mailwarden.auth import dmarc
from mailwarden.auth.spf import SpfResult
from mailwarden.dns import LiveResolver


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_dmarc_case(resolver: LiveResolver, index: int) -> None:
    case = CASES[index]
    from_domain, spf, dkim = inputs(index)
    found = dmarc.evaluate(resolver, from_domain, spf, dkim, case.key)
    assert found.result == case.result, found.reason
    if case.policy is not None:
        assert found.policy == case.policy
    assert found.sampled_out == case.sampled_out
    assert found.domain == from_domain


def test_timeout_is_temperror(blackhole: str) -> None:
    with LiveResolver(blackhole, timeout=0.2) as live:
        found = dmarc.evaluate(live, "c0.test", SpfResult("fail", "c0.test"), [], "k")
    assert found.result == "temperror" and "TIMEOUT" in found.reason


def test_pct_samples_about_that_share_of_messages() -> None:
    chosen = sum(dmarc.in_sample(f"<{n}@example>", 30) for n in range(2000))
    assert 500 < chosen < 700
    assert dmarc.in_sample("<same@example>", 30) == dmarc.in_sample("<same@example>", 30)


def test_alignment_uses_the_public_suffix_list() -> None:
    assert dmarc.aligned("mail.example.co.uk", "example.co.uk", "r")
    assert not dmarc.aligned("other.co.uk", "example.co.uk", "r")
    assert not dmarc.aligned("mail.example.co.uk", "example.co.uk", "s")


def test_record_parsing() -> None:
    record = dmarc.parse_record("v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=25; "
                                "rua=mailto:a@example.org,mailto:b@example.org")
    assert (record.policy, record.subdomain_policy, record.adkim, record.aspf, record.pct) == \
        ("quarantine", "reject", "s", "r", 25)
    assert record.rua == ("mailto:a@example.org", "mailto:b@example.org")
    with pytest.raises(dmarc.DmarcRecordError):
        dmarc.parse_record("v=DMARC1; p=")
