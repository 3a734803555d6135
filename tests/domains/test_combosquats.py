"""The words around a brand that make a combosquat."""

from mailwarden.domains.combosquat import padding, padding_ends, split_words


def test_hyphenated_words_around_a_brand() -> None:
    assert padding("", "billingportal", hyphenated=True) == ("billing", "portal")
    assert padding("", "it", hyphenated=True) == ("it",)
    assert padding("", "analytics", hyphenated=True) is None  # not a lure or filler word


def test_run_together_words_need_a_lure() -> None:
    assert padding("", "securelogin", hyphenated=False) == ("secure", "login")
    assert padding("", "cloud", hyphenated=False) is None  # "samsungcloud": the brand's own product
    assert padding("", "365", hyphenated=False) is None
    assert padding("", "it", hyphenated=False) is None  # two letters run together are too easy to find


def test_on_someone_elses_platform_any_padding_counts() -> None:
    assert padding("", "0326", hyphenated=False, strict=False) == ("0326",)


def test_a_suffix_run_onto_the_brand() -> None:
    assert padding("", "co", hyphenated=False) == ("co",)  # marlowfenwickco.uk


def test_words_and_numbers_are_split_longest_first() -> None:
    assert split_words("billingportal2026", 2) == ("billing", "portal", "2026")
    assert split_words("xyz", 2) is None
    assert padding_ends("securebramwell") == [0, 6]
