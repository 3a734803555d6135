"""The similarity engine as a specification: which domains imitate which, by which technique.

The protected set is the scenario organisation's (../shared/scenarios/org.toml): its own domains
marlowfenwick.co.uk and mfinstruments.com, and its partners' domains.
"""

from pathlib import Path

import pytest

from mailwarden.config import load_org
from mailwarden.domains import DomainIndex, ProtectedDomain

SCENARIO_ORG = Path(__file__).resolve().parents[2].parent / "shared" / "scenarios" / "org.toml"


@pytest.fixture(scope="module")
def index() -> DomainIndex:
    return DomainIndex.for_org(load_org(SCENARIO_ORG))


@pytest.mark.parametrize(("candidate", "imitated", "technique"), [
    ("marlowfenvvick.co.uk", "marlowfenwick.co.uk", "homoglyph"),  # vv for w
    ("castlegatepolyrners.co.uk", "castlegatepolymers.co.uk", "homoglyph"),  # rn for m
    ("xn--veltr-electronics-3co.de", "veltro-electronics.de", "homoglyph"),  # Cyrillic о
    ("veltrо-electronics.de", "veltro-electronics.de", "homoglyph"),  # the same, written in Unicode
    ("castlegatepolymer.co.uk", "castlegatepolymers.co.uk", "omission"),
    ("ledger-line.io", "ledgerline.io", "hyphenation"),
    ("ashdownpryce.com", "ashdownpryce.co.uk", "tld_swap"),
    ("ashdownpryce.co", "ashdownpryce.co.uk", "tld_swap"),
    ("ashdownpryce.uk.com", "ashdownpryce.co.uk", "tld_swap"),  # a second-level name sold to anyone
    ("mfinstruments-it.com", "mfinstruments.com", "combosquat"),
    ("ledgerline.io.account-verify.net", "ledgerline.io", "subdomain"),
    ("ledger.line.io", "ledgerline.io", "subdomain"),  # the label cut by a dot
    ("bramwellfreight0326.blob.core.windows.net", "bramwellfreight.com", "combosquat"),
])
def test_scenario_lookalikes_are_recognised(index: DomainIndex, candidate: str, imitated: str,
                                            technique: str) -> None:
    found = index.check(candidate)
    assert found is not None
    assert (found.lookalike_of, found.technique) == (imitated, technique)


def test_a_partner_brand_with_billing_words_is_a_combosquat(index: DomainIndex) -> None:
    found = index.check("castlegate-billing-portal.com")
    assert found is not None and found.technique == "combosquat"
    assert found.owner == "Castlegate Polymers Ltd"  # brand "castlegate": the first word of both its domains
    assert "billing-portal" in found.detail


@pytest.mark.parametrize(("candidate", "technique"), [
    ("bramwelfreight.com", "omission"),
    ("bramwellfreigght.com", "repetition"),
    ("bramwellfreiqht.com", "replacement"),  # q for g
    ("bramwellferight.com", "transposition"),
    ("brimwellfreight.com", "vowel_swap"),
    ("bramwellfreighr.com", "replacement"),  # r is the key next to t
    ("bramwellfreightx.com", "insertion"),
    ("bramwellfreigit.com", "bitflip"),  # h (0x68) for i (0x69)
])
def test_typos_are_named(index: DomainIndex, candidate: str, technique: str) -> None:
    found = index.check(candidate)
    assert found is not None and found.lookalike_of == "bramwellfreight.com"
    assert found.technique == technique


def test_the_evidence_says_what_changed(index: DomainIndex) -> None:
    found = index.check("castlegatepolymer.co.uk")
    assert found is not None and "missing 's'" in found.detail
    idn = index.check("xn--veltr-electronics-3co.de")
    assert idn is not None and "CYRILLIC SMALL LETTER O" in idn.detail and idn.score >= 90
    assert found.kind == "partner" and found.owner == "Castlegate Polymers Ltd"


@pytest.mark.parametrize("candidate", [
    "veltron-electrical.co.uk",  # a real local contractor, several letters from veltro-electronics.de
    "eu.docusiqn.net",  # a brand typo, but docusign is not protected here
    "lindenhof-pension.at",
    "github.com",
    "marlow.co.uk",  # the first word of a name alone is not the brand
])
def test_unrelated_domains_are_not_flagged(index: DomainIndex, candidate: str) -> None:
    assert index.check(candidate) is None


@pytest.mark.parametrize("candidate", [
    "castlegate-polymers.com",  # the partner's other listed domain
    "veltro.eu",
    "shop.veltro.eu",  # below a protected domain
    "mail.marlowfenwick.co.uk",
    "MarlowFenwick.co.uk.",
])
def test_known_relations_are_never_flagged(index: DomainIndex, candidate: str) -> None:
    assert index.check(candidate) is None


def test_an_allowed_domain_and_its_subdomains_are_never_flagged() -> None:
    index = DomainIndex(["ledgerline.io"], allowed=["ledger-line.io"])
    assert index.check("ledger-line.io") is None
    assert index.check("app.ledger-line.io") is None
    assert index.check("ledgerlime.io") is not None


def test_a_partner_tenant_on_a_shared_platform_is_how_partners_work(index: DomainIndex) -> None:
    assert index.check("bramwellfreight.zendesk.com") is None
    assert index.check("castlegatepolymers.sharepoint.com") is None
    typo = index.check("castlegatepolymer.onmicrosoft.com")
    assert typo is not None and typo.technique == "omission"


def test_a_brands_own_product_names_are_not_combosquats() -> None:
    index = DomainIndex(["google.com", "tiktokcdn.com", "samsung.com"])
    for candidate in ("google-analytics.com", "googleapis.com", "samsungcloud.com", "tiktokcdnx.net"):
        found = index.check(candidate)
        assert found is None or found.technique != "combosquat", candidate
    assert index.check("google-login.com") is not None
    assert index.check("googlesecurelogin.com") is not None


def test_short_labels_are_only_compared_whole() -> None:
    index = DomainIndex(["x.com", "bing.com", "apple.com"])
    assert index.check("y.com") is None
    assert index.check("bong.com") is None  # four letters: too short for a typo
    found = index.check("x.net")
    assert found is not None and found.technique == "tld_swap"
    assert index.check("appie.com") is not None
    assert index.check("ppple.com") is None  # a typo of a five-letter name keeps its first letter


def test_siblings_with_one_letter_parts_are_not_typos() -> None:
    index = DomainIndex(["t-msedge.net"])
    assert index.check("s-msedge.net") is None


def test_the_most_convincing_match_wins() -> None:
    index = DomainIndex([ProtectedDomain("globex.com", kind="partner"), ProtectedDomain("globez.com")])
    found = index.check("gl0bex.com")
    assert found is not None and found.lookalike_of == "globex.com" and found.technique == "homoglyph"


def test_what_is_not_a_domain_is_not_a_lookalike(index: DomainIndex) -> None:
    for candidate in ("", "localhost", "192.0.2.7", "co.uk", "x" * 300):
        assert index.check(candidate) is None


def test_an_empty_index_finds_nothing() -> None:
    assert DomainIndex([]).check("marlowfenvvick.co.uk") is None
