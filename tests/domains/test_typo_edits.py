"""Naming the one edit between a candidate and a protected label."""

import pytest

from mailwarden.domains.edits import distance, keyboard_neighbours, one_edit


@pytest.mark.parametrize(("candidate", "protected", "technique", "detail"), [
    ("castlegatepolymer", "castlegatepolymers", "omission", "missing 's'"),
    ("goolge", "google", "transposition", "'gl' swapped"),
    ("gooogle", "google", "repetition", "'o' doubled"),
    ("googlex", "google", "insertion", "'x' added"),
    ("guogle", "google", "vowel_swap", "'u' for 'o'"),
    ("foogle", "google", "replacement", "'f' for 'g' (next key)"),
    ("goigle", "google", "vowel_swap", "'i' for 'o'"),
    ("googlu", "google", "vowel_swap", "'u' for 'e'"),
    ("gookle", "google", "replacement", "'k' for 'g'"),
    ("coogle", "google", "bitflip", "'c' for 'g' (one bit)"),
])
def test_one_edit_is_named(candidate: str, protected: str, technique: str, detail: str) -> None:
    edit = one_edit(candidate, protected)
    assert edit is not None
    assert (edit.technique, edit.detail) == (technique, detail)


def test_more_than_one_edit_is_none() -> None:
    assert one_edit("google", "google") is None
    assert one_edit("gogle1", "google") is None
    assert one_edit("elgoog", "google") is None


def test_keyboard_neighbours_come_from_all_layouts() -> None:
    assert {"q", "w", "s", "z", "y"} <= keyboard_neighbours()["a"]  # qwerty, and z/y from qwertz and azerty
    assert "p" not in keyboard_neighbours()["a"]


def test_distance_is_bounded() -> None:
    assert distance("castlegatepolymers", "castlegatepolymer", 2) == 1
    assert distance("abcd", "badc", 2) == 2
    assert distance("short", "muchlongername", 2) == 3
