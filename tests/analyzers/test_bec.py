"""Vendor fraud and BEC against learned profiles: what must and must not fire."""

from pathlib import Path

from mailbuilder import build, ids

from mailwarden.analyzers import bec
from mailwarden.config import OrgConfig, Partner, load_org
from mailwarden.message import parse
from mailwarden.pipeline import Context, scan
from mailwarden.profiles import Profiles
from mailwarden.signals import Verdict

SCENARIOS = Path(__file__).resolve().parents[2].parent / "shared" / "scenarios"
OURS = "mx1.acme-corp.com"
ORG = OrgConfig(name="Acme", domains=("acme-corp.com",), authserv_id=OURS,
                partners=(Partner("Globex", ("globex.example",)),))
PASS = {"Authentication-Results": f"{OURS}; spf=pass smtp.mailfrom=globex.example; dkim=pass header.d=globex.example;"
                                  " dmarc=pass header.from=globex.example"}
INVOICE = "Please pay invoice 77. Sort code 40-17-22, account no. 31840756, IBAN GB23 NCBK 4017 2231 8407 56."
NEW_BANK = ("Please note our new bank details: Sort code 40-11-60, Account 21457709, "
            "IBAN GB94 QBRB 2311 8424 0195 68. Do not use the old account.")


def learned(*messages):  # type: ignore[no-untyped-def]
    profiles = Profiles()
    for message in messages:
        profiles.observe(message)
    return Context.for_org(ORG, profiles)


def globex(body: str, **headers: str):  # type: ignore[no-untyped-def]
    return build(from_="Dawn <dawn@globex.example>", body=body, headers={**PASS, **headers}, authserv_id=OURS)


def test_the_usual_bank_details_raise_nothing() -> None:
    context = learned(globex(INVOICE))
    assert ids(bec.analyze(globex(INVOICE), context)) == set()


def test_different_bank_details_from_a_partner_are_a_bank_change() -> None:
    context = learned(globex(INVOICE))
    found = bec.analyze(globex(NEW_BANK), context)
    change = next(s for s in found if s.id == "bec.bank_change")
    assert change.evidence["new"][0].endswith("9568")
    assert "31840756" not in change.detail  # identifiers are masked in explanations


def test_new_reply_to_plus_payment_change_is_an_account_takeover() -> None:
    context = learned(globex(INVOICE), globex("See you Tuesday."))
    found = ids(bec.analyze(globex(NEW_BANK, **{"Reply-To": "dawn@globex-accounts.example"}), context))
    assert {"bec.bank_change", "bec.reply_to_diversion", "bec.account_takeover"} <= found


def test_a_reply_into_a_known_thread_from_another_domain_is_a_hijack() -> None:
    original = build(from_="Dawn <dawn@globex.example>", body="Delivery is scheduled.", headers={**PASS})
    context = learned(original)
    reply = build(from_="Dawn <dawn@globex-example.example>", subject="RE: delivery",
                  body="Quick update on the delivery.", headers={"In-Reply-To": "<1@example.org>"})
    assert "bec.thread_hijack" in ids(bec.analyze(reply, context))
    genuine = build(from_="Dawn <dawn@globex.example>", body="Delivery moved.",
                    headers={"In-Reply-To": "<1@example.org>", **PASS}, authserv_id=OURS)
    assert "bec.thread_hijack" not in ids(bec.analyze(genuine, context))


def test_gift_cards_and_payroll_diversion() -> None:
    context = learned(globex(INVOICE))
    assert "bec.gift_cards" in ids(bec.analyze(build(body="Buy 5 Apple gift cards and send me the codes."), context))
    payroll = build(from_="Tom <tom.acme@outlook.com>", body="Please update my direct deposit to my new bank account "
                    "before the payroll cut-off: sort code 40-11-60, account 21457709.")
    assert {"bec.payroll_diversion", "bec.first_contact_request"} <= ids(bec.analyze(payroll, context))


def test_our_own_authenticated_staff_discuss_payments_freely() -> None:
    ours = build(from_="CFO <cfo@acme-corp.com>", body=NEW_BANK + " Wire transfer today.", authserv_id=OURS,
                 headers={"Authentication-Results": f"{OURS}; dmarc=pass header.from=acme-corp.com"})
    assert bec.analyze(ours, learned(globex(INVOICE))) == []


def test_learning_history_then_flagging_the_compromised_partner() -> None:
    org = load_org(SCENARIOS / "org.toml")
    profiles = Profiles()
    for path in sorted((SCENARIOS / "history").glob("*.eml")):
        profiles.observe(parse(path.read_bytes(), authserv_id=org.authserv_id))
    context = Context.for_org(org, profiles)
    hijacked = parse((SCENARIOS / "messages" / "msg-019.eml").read_bytes(), authserv_id=org.authserv_id)
    result = scan(hijacked, context)
    assert {"bec.bank_change", "bec.new_infrastructure", "bec.account_takeover"} <= {s.id for s in result.signals}
    assert result.verdict in (Verdict.QUARANTINE, Verdict.REJECT)
    genuine = parse((SCENARIOS / "messages" / "msg-013.eml").read_bytes(), authserv_id=org.authserv_id)
    assert scan(genuine, context).verdict is Verdict.DELIVER


def test_a_partner_suddenly_sharing_a_login_page_on_cloud_storage() -> None:
    context = learned(globex(INVOICE + " Portal: https://portal.globex.example/inv"))
    message = globex("Please sign in to view the shared invoice: https://globex-docs.blob.core.windows.net/v.html")
    assert {"bec.unfamiliar_file_host", "bec.account_takeover"} <= ids(bec.analyze(message, context))
