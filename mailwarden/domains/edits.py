"""Typos between two labels, named: which one edit turns the protected name into the candidate.

    one_edit("castlegatepolymer", "castlegatepolymers") -> Edit("omission", "missing 's'")
    one_edit("goolge", "google")                        -> Edit("transposition", "'gl' swapped")

Names follow the usual typosquatting vocabulary (omission, insertion, repetition, replacement with
keyboard adjacency, transposition, vowel swap, bit flip). Keyboards are data (``data/lookalikes.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from mailwarden.domains.data import keyboards

VOWELS = frozenset("aeiou")


@dataclass(frozen=True)
class Edit:
    technique: str
    detail: str
    position: int = 0  # where in the names the edit is


@cache
def keyboard_neighbours() -> dict[str, frozenset[str]]:
    """Keys next to each key on any of the configured layouts (same row, and the staggered rows around)."""
    near: dict[str, set[str]] = {}
    for rows in keyboards().values():
        for r, row in enumerate(rows):
            for i, key in enumerate(row):
                found = near.setdefault(key, set())
                found.update(row[j] for j in (i - 1, i + 1) if 0 <= j < len(row))
                if r > 0:
                    found.update(rows[r - 1][j] for j in (i, i + 1) if j < len(rows[r - 1]))
                if r + 1 < len(rows):
                    found.update(rows[r + 1][j] for j in (i - 1, i) if 0 <= j < len(rows[r + 1]))
    return {key: frozenset(keys) for key, keys in near.items()}


def _first_difference(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    i = 0
    while i < limit and a[i] == b[i]:
        i += 1
    return i


def _substitution(seen: str, meant: str, position: int) -> Edit:
    if seen in VOWELS and meant in VOWELS:
        return Edit("vowel_swap", f"'{seen}' for '{meant}'", position)
    if seen in keyboard_neighbours().get(meant, ()):
        return Edit("replacement", f"'{seen}' for '{meant}' (next key)", position)
    flipped = ord(seen) ^ ord(meant)
    if flipped and flipped & (flipped - 1) == 0:
        return Edit("bitflip", f"'{seen}' for '{meant}' (one bit)", position)
    return Edit("replacement", f"'{seen}' for '{meant}'", position)


def one_edit(candidate: str, protected: str) -> Edit | None:
    """The single edit that makes ``protected`` into ``candidate``; None when it takes none or more."""
    if candidate == protected:
        return None
    i = _first_difference(candidate, protected)
    grown = len(candidate) - len(protected)
    if grown == 1:
        if candidate[i + 1:] != protected[i:]:
            return None
        extra = candidate[i]
        if (i > 0 and candidate[i - 1] == extra) or (i + 1 < len(candidate) and candidate[i + 1] == extra):
            return Edit("repetition", f"'{extra}' doubled", i)
        return Edit("insertion", f"'{extra}' added", i)
    if grown == -1:
        if candidate[i:] != protected[i + 1:]:
            return None
        return Edit("omission", f"missing '{protected[i]}'", i)
    if grown != 0:
        return None
    if candidate[i + 1:] == protected[i + 1:]:
        return _substitution(candidate[i], protected[i], i)
    if (i + 1 < len(candidate) and candidate[i] == protected[i + 1] and candidate[i + 1] == protected[i]
            and candidate[i + 2:] == protected[i + 2:]):
        return Edit("transposition", f"'{protected[i:i + 2]}' swapped", i)
    return None


def distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (edits incl. adjacent swaps), or ``limit + 1`` once past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[len(b)], limit + 1)
