"""Display-name impersonation of people, partners and the organisation."""

import pytest
from mailbuilder import build, ids

from mailwarden.analyzers import sender
from mailwarden.analyzers.sender import is_same_person, names_company
from mailwarden.config import OrgConfig, Partner, Person
from mailwarden.pipeline import Context

ORG = OrgConfig(
    name="Acme Corp Ltd", domains=("acme-corp.com",), authserv_id="mx1.acme-corp.com",
    partners=(Partner("Globex Logistics Ltd", ("globex-logistics.com",), ("dawn.hartley@globex-logistics.com",)),),
    people=(Person("jane.doe@acme-corp.com", "Jane Doe", "Chief Financial Officer", vip=True),
            Person("tom.wilk@acme-corp.com", "Tomás Wilk", "Accounts Payable")),
)


def analyze(message):  # type: ignore[no-untyped-def]
    return ids(sender.analyze(message, Context.for_org(ORG)))


@pytest.mark.parametrize("shown", ["Jane Doe", "Doe, Jane", "J. Doe", "jane DOE (CFO)", "Dr Jane Doe"])
def test_person_names_match_in_any_usual_form(shown: str) -> None:
    assert is_same_person(shown, "Jane Doe")


@pytest.mark.parametrize("shown", ["Jane", "John Doe", "Janet Doerr"])
def test_other_names_do_not(shown: str) -> None:
    assert not is_same_person(shown, "Jane Doe")


def test_company_names_match_on_their_distinctive_words() -> None:
    assert names_company("Globex Logistics Billing", "Globex Logistics Ltd")
    assert not names_company("Globe Logistics", "Globex Logistics Ltd")


def test_vip_name_on_free_mail() -> None:
    assert analyze(build(from_="Jane Doe <jane.doe.office@gmail.com>")) == {"sender.display_name_vip"}


def test_employee_name_from_another_domain() -> None:
    assert analyze(build(from_="Tomas Wilk <t.wilk@payroll-help.example>")) == {"sender.display_name_employee"}


def test_partner_and_partner_contact_names_from_elsewhere() -> None:
    assert analyze(build(from_="Globex Logistics Billing <billing@lindenhof.example>")) == {
        "sender.display_name_partner"}
    assert analyze(build(from_="Dawn Hartley <dawn@freight-billing.example>")) == {"sender.display_name_partner"}


def test_our_own_name_from_outside() -> None:
    assert analyze(build(from_="Acme Corp IT Service Desk <it@acme-helpdesk.example>")) == {
        "sender.display_name_own_org"}


def test_the_real_people_and_partners_are_not_impersonators() -> None:
    assert analyze(build(from_="Globex Logistics <billing@globex-logistics.com>")) == set()
    assert analyze(build(from_="Jane Doe <jane.doe@acme-corp.com>")) == set()


def test_a_service_whose_replies_reach_the_named_party_is_not_impersonation() -> None:
    message = build(from_='"Dawn Hartley (via Box)" <noreply@box.example>',
                    headers={"Reply-To": "dawn.hartley@globex-logistics.com"})
    assert analyze(message) == set()


def test_an_authenticated_brand_notification_naming_a_colleague() -> None:
    message = build(from_='"Jane Doe" <notifications@github.com>', authserv_id="mx1.acme-corp.com",
                    headers={"Authentication-Results": "mx1.acme-corp.com; dmarc=pass header.from=github.com"})
    assert analyze(message) == set()


def test_authenticated_free_mail_is_no_service_relay() -> None:
    message = build(from_="Jane Doe <jane.doe.office@gmail.com>", authserv_id="mx1.acme-corp.com",
                    headers={"Authentication-Results": "mx1.acme-corp.com; dmarc=pass header.from=gmail.com"})
    assert analyze(message) == {"sender.display_name_vip"}


def test_an_authenticated_collaboration_service_naming_a_colleague() -> None:
    message = build(from_='"Jane Doe (Asana)" <no-reply@asana.com>', authserv_id="mx1.acme-corp.com",
                    headers={"Authentication-Results": "mx1.acme-corp.com; dmarc=pass header.from=asana.com"})
    assert analyze(message) == set()
    forged = build(from_='"Jane Doe (Asana)" <no-reply@asana.com>')
    assert analyze(forged) == {"sender.display_name_vip"}


def test_our_own_domain_in_a_display_name_from_outside() -> None:
    assert analyze(build(from_='"acme-corp.com Mail Admin" <admin@mail-quota.example>')) == {
        "sender.display_name_own_org"}
