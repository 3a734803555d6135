"""dnstwist's permutations of a partner domain come back as lookalikes of it (the full bench: bench/domains.py)."""

from collections import Counter

import dnstwist

from mailwarden.domains import DomainIndex

FUZZERS = ["addition", "bitsquatting", "homoglyph", "hyphenation", "insertion", "omission", "repetition",
           "replacement", "subdomain", "transposition", "vowel-swap", "tld-swap"]


def test_dnstwist_permutations_of_a_partner_are_recognised() -> None:
    protected = "castlegatepolymers.co.uk"
    index = DomainIndex([protected])
    fuzzer = dnstwist.Fuzzer(protected, tld_dictionary=["com", "net", "org", "co", "uk", "de", "io", "uk.com"])
    fuzzer.generate(fuzzers=FUZZERS)
    total: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for permutation in fuzzer.domains:
        candidate = permutation["domain"]
        if index.is_known(candidate):
            continue
        total[permutation["fuzzer"]] += 1
        match = index.check(candidate)
        found[permutation["fuzzer"]] += match is not None and match.lookalike_of == protected
    assert set(total) == set(FUZZERS)
    for name in FUZZERS:
        assert found[name] >= 0.99 * total[name], (name, found[name], total[name])
