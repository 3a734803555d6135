"""Trusted Authentication-Results as signals."""

from mailbuilder import build, ids

from mailwarden.analyzers import auth
from mailwarden.config import OrgConfig
from mailwarden.pipeline import Context

OURS = "mx1.acme-corp.com"


def analyze(message, context=None):  # type: ignore[no-untyped-def]
    return ids(auth.analyze(message, context or Context.for_org(OrgConfig(domains=("acme-corp.com",),
                                                                          authserv_id=OURS))))


def results(value: str) -> dict[str, str]:
    return {"Authentication-Results": value}


def test_dmarc_fail_with_reject_policy() -> None:
    message = build(from_="ceo@bank.example", authserv_id=OURS, headers=results(
        f"{OURS}; spf=fail smtp.mailfrom=bank.example; dkim=none; dmarc=fail (p=REJECT) header.from=bank.example"))
    found = analyze(message)
    assert {"auth.spf_fail", "auth.dmarc_fail", "auth.dmarc_reject_policy", "auth.unauthenticated"} <= found


def test_results_written_by_someone_else_are_ignored() -> None:
    message = build(authserv_id=OURS, headers=results(
        "mx.attacker.example; spf=fail smtp.mailfrom=example.org; dmarc=fail header.from=example.org"))
    assert analyze(message) == set()


def test_a_fully_authenticated_message_only_notes_the_pass() -> None:
    message = build(authserv_id=OURS, headers=results(
        f"{OURS}; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org; dmarc=pass "
        "header.from=example.org"))
    assert analyze(message) == {"auth.dmarc_pass"}


def test_unauthenticated_mail_from_our_own_domain_is_a_spoof() -> None:
    message = build(from_="Priya <priya@acme-corp.com>", authserv_id=OURS, headers=results(
        f"{OURS}; spf=softfail smtp.mailfrom=acme-corp.com; dkim=none; dmarc=fail header.from=acme-corp.com"))
    assert "auth.own_domain_spoof" in analyze(message)


def test_no_dmarc_record() -> None:
    message = build(authserv_id=OURS, headers=results(f"{OURS}; spf=pass smtp.mailfrom=example.org; dmarc=none"))
    assert analyze(message) == {"auth.no_dmarc_policy"}
