"""The engine's data file reads as intended."""

from mailwarden.domains.data import (
    combosquat_fillers,
    combosquat_lures,
    groups,
    keyboards,
    letters,
    platform_suffixes,
    weak_groups,
    weak_letters,
)


def test_look_alikes_read_as_ascii() -> None:
    for seen, read in [*letters().items(), *groups(), *weak_letters().items(), *weak_groups()]:
        assert (read.isascii() and read.islower()) or read.isdigit(), (seen, read)
        assert seen != read


def test_keyboards_have_four_rows_of_distinct_keys() -> None:
    for name, rows in keyboards().items():
        assert len(rows) == 4, name
        keys = "".join(rows)
        assert len(keys) == len(set(keys)), name


def test_words_are_lower_case_ascii_and_not_both_kinds() -> None:
    for word in combosquat_lures() | combosquat_fillers():
        assert word.isascii() and word == word.lower() and word.isalnum(), word
    assert not combosquat_lures() & combosquat_fillers()


def test_platforms_are_domain_names() -> None:
    assert all("." in p and p == p.lower() for p in platform_suffixes())
