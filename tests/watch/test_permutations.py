"""The watch's permutation generator: every candidate is a lookalike the engine recognises, of its source."""

from collections import Counter
from pathlib import Path

import pytest

from mailwarden.domains import DomainIndex
from mailwarden.domains.combosquat import word_key
from mailwarden.domains.data import combosquat_lures, watch_glyphs, watch_no_idn, watch_suffixes, watch_words
from mailwarden.domains.permutations import TECHNIQUES, permutations
from mailwarden.domains.skeleton import plain

TRANCO = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "domains" / "tranco-top10k.txt"
SCENARIO = ["marlowfenwick.co.uk", "mfinstruments.com", "castlegatepolymers.co.uk", "castlegate-polymers.com",
            "veltro-electronics.de", "veltro.eu", "bramwellfreight.com", "ashdownpryce.co.uk", "ledgerline.io"]
ODD = ["acme-it.com", "ab-cd-ef.net", "modern.org", "clouds.io", "rnicro.de", "vvave.com", "müller-bau.de",
       "a1.com", "x.org", "1und1.de", "xn--mller-kva.de", "shop.example.co.uk"]


def domains() -> list[str]:
    found = SCENARIO + ODD
    if TRANCO.exists():
        found += [line.strip() for line in TRANCO.read_text().splitlines()[:150] if line.strip()]
    return found


def test_every_candidate_is_recognised_as_a_lookalike_of_its_source() -> None:
    missed = []
    total = 0
    for domain in domains():
        index = DomainIndex([domain])
        for candidate in permutations(domain):
            total += 1
            found = index.check(candidate.domain)
            if found is None or found.lookalike_of != candidate.source:
                missed.append((candidate, found))
    assert total > 20_000
    assert missed == []


def test_a_long_label_gets_every_technique() -> None:
    found = permutations("marlowfenwick.com")
    by_technique = Counter(p.technique for p in found)
    assert set(by_technique) == set(TECHNIQUES)
    assert len({p.domain for p in found}) == len(found)
    assert all(p.source == "marlowfenwick.com" for p in found)
    names = {p.domain: p.technique for p in found}
    assert names["marlowfenvvick.com"] == "homoglyph"
    assert names["rnarlowfenwick.com"] == "homoglyph"
    assert names["marlowfenwick.co.uk"] == "tld_swap"
    assert names["marlow-fenwick.com"] == "hyphenation"
    assert names["marlowfenwikc.com"] == "transposition"
    assert names["marlowfenwck.com"] == "omission"
    assert names["marlowfenwickk.com"] == "repetition"
    assert names["marlowfenwick-billing.com"] == "combosquat"
    assert names["marlowfenwickbilling.com"] == "combosquat"
    assert "marlowfenwick.com" not in names


def test_unicode_homoglyphs_are_punycode_and_only_where_registries_sell_them() -> None:
    com = {p.domain for p in permutations("mfinstruments.com") if p.domain.startswith("xn--")}
    assert "xn--mfnstruments-2ok.com" in com  # Cyrillic і
    assert all(label.isascii() for d in com for label in d.split("."))
    assert not [p for p in permutations("marlowfenwick.co.uk") if p.domain.startswith("xn--")]


def test_short_labels_keep_their_first_letter_and_tiny_ones_get_no_typos() -> None:
    found = permutations("bramx.eu")  # five letters: below SHORT_LABEL
    typos = [p for p in found if p.technique in ("omission", "insertion", "replacement", "bitflip", "repetition",
                                                 "transposition", "vowel_swap")]
    assert typos and all(p.domain[0] == "b" for p in typos)
    assert {p.technique for p in permutations("x.org")} <= {"tld_swap", "homoglyph"}


def test_suffixes_and_words_are_configurable() -> None:
    found = permutations("marlowfenwick.co.uk", suffixes=["com", "cm"], words=["invoice"])
    swaps = sorted(p.domain for p in found if p.technique == "tld_swap")
    assert swaps == ["marlowfenwick.cm", "marlowfenwick.com"]
    squats = sorted(p.domain for p in found if p.technique == "combosquat")
    assert squats == ["invoice-marlowfenwick.co.uk", "marlowfenwick-invoice.co.uk", "marlowfenwickinvoice.co.uk"]


@pytest.mark.parametrize("domain", ["co.uk", "192.0.2.1", "", "localhost"])
def test_what_has_nothing_registrable_has_no_permutations(domain: str) -> None:
    assert permutations(domain) == []


def test_watch_data_reads_as_intended() -> None:
    for letter, glyphs in watch_glyphs().items():
        for glyph in glyphs:
            assert not glyph.isascii() and plain(glyph) == letter, (letter, glyph)
    lures = {word_key(w) for w in combosquat_lures()}
    assert all(word_key(w) in lures for w in watch_words())
    assert all(s == s.lower().strip(".") and s for s in watch_suffixes())
    assert "co.uk" in watch_no_idn()
