"""Words around a brand: when "castlegate-billing-portal" is a brand with padding, not another name.

    padding("billingportal", hyphenated=False) -> ("billing", "portal")   # a lure word: counts
    padding("analytics", hyphenated=True)      -> None                    # not a known word

The words are data (``data/lookalikes.toml``): lures ask for something (billing, login, it), fillers only pad
(group, uk, online). Run together without hyphens the words must be three letters or more and include a
lure, so a brand's own product names ("samsungcloud", "microsoft365") are not combosquats; a public-suffix
word run onto the brand ("marlowfenwickco.uk") is one.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from mailwarden.domains.data import combosquat_fillers, combosquat_lures, combosquat_suffix_words
from mailwarden.domains.skeleton import skeleton

_NUMBER = re.compile(r"\d+")


def word_key(text: str) -> str:
    """A word as the engine compares it: its skeleton with digits kept and hyphens removed."""
    return skeleton(text, fold_digits=False).replace("-", "")


@cache
def _words() -> tuple[frozenset[str], frozenset[str], int]:
    lures = frozenset(word_key(w) for w in combosquat_lures())
    words = lures | frozenset(word_key(w) for w in combosquat_fillers())
    return words, lures, max(len(w) for w in words)


def is_padding_word(text: str) -> bool:
    return word_key(text) in _words()[0]


@lru_cache(maxsize=65536)
def split_words(text: str, min_length: int) -> tuple[str, ...] | None:
    """``text`` as known words and numbers (longest words first), or None."""
    if not text:
        return ()
    number = _NUMBER.match(text)
    if number:
        rest = split_words(text[number.end():], min_length)
        return None if rest is None else (number.group(0), *rest)
    words, _, longest = _words()
    for n in range(min(longest, len(text)), min_length - 1, -1):
        if text[:n] in words:
            rest = split_words(text[n:], min_length)
            if rest is not None:
                return (text[:n], *rest)
    return None


def padding(left: str, right: str, hyphenated: bool, strict: bool = True) -> tuple[str, ...] | None:
    """The words around a brand when they make a combosquat, else None.

    ``hyphenated``: the brand stands between hyphens; ``strict=False`` (a tenant or subdomain name on
    someone else's domain) accepts any known words or numbers.
    """
    if not left and right in combosquat_suffix_words():
        return (right,)
    min_length = 2 if hyphenated or not strict else 3
    before = split_words(left, min_length)
    after = split_words(right, min_length)
    if before is None or after is None or not (before or after):
        return None
    found = before + after
    if strict and not hyphenated and not any(w in _words()[1] for w in found):
        return None
    return found


def padding_ends(text: str, limit: int = 3) -> list[int]:
    """Where up to ``limit`` combosquat words or numbers at the start of ``text`` can end (0 always can)."""
    words, _, longest = _words()
    ends = {0}
    frontier = [0]
    for _ in range(limit):
        reached = []
        for start in frontier:
            number = _NUMBER.match(text, start)
            if number:
                reached.append(number.end())
            reached += [start + n for n in range(2, min(longest, len(text) - start) + 1)
                        if text[start:start + n] in words]
        frontier = [end for end in reached if end not in ends]
        ends.update(frontier)
        if not frontier:
            break
    return sorted(ends)
