"""The lookalikes someone could register of a protected domain, for the watch to look up in DNS.

    permutations("acme-corp.com")
      -> [Permutation(domain="acrne-corp.com", source="acme-corp.com", technique="homoglyph"), ...]

The techniques are the similarity engine's (``index``), with its names: homoglyph (ASCII look-alikes that
read the same, rough look-alikes of long labels, Unicode letters from ``data/lookalikes.toml``), hyphenation,
transposition, vowel swap, omission, repetition, insertion and replacement (keyboard neighbours), bit flip,
TLD swap (over the configured suffixes) and combosquat (a brand with a lure word). The generator keeps to the
engine's rules, so that every candidate is one the engine recognises as a lookalike of its source (a test
checks this): typos only of labels with ``MIN_TYPO_LENGTH`` letters, keeping the first letter below
``SHORT_LABEL``, never making or changing a one- or two-letter part between hyphens; homoglyphs that read the
same (``skeleton``), rough ones only from ``MIN_WEAK_LENGTH`` letters; combosquats of brands of
``MIN_BRAND_LENGTH`` letters. A candidate made by several techniques is named by the first in ``TECHNIQUES``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import idna

from mailwarden.domains.combosquat import word_key
from mailwarden.domains.data import (
    groups,
    letters,
    watch_glyphs,
    watch_no_idn,
    watch_suffixes,
    watch_words,
    weak_letters,
)
from mailwarden.domains.edits import VOWELS, keyboard_neighbours, one_edit
from mailwarden.domains.index import MIN_BRAND_LENGTH, MIN_TYPO_LENGTH, MIN_WEAK_LENGTH, SHORT_LABEL
from mailwarden.domains.names import DomainName, split_host
from mailwarden.domains.skeleton import plain, skeleton, weak_key

TECHNIQUES = ("homoglyph", "hyphenation", "transposition", "vowel_swap", "omission", "repetition", "insertion",
              "replacement", "bitflip", "tld_swap", "combosquat")
TYPO_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
MAX_LABEL = 63
_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class Permutation:
    """A candidate lookalike (ASCII, punycode for IDN), the protected domain it imitates, and how."""

    domain: str
    source: str
    technique: str


def _key(label: str) -> str:
    return skeleton(label).replace("-", "")


def _keys(label: str) -> tuple[str, ...]:
    """The skeleton and, when letter groups changed it, the letter-by-letter reading (as the index keys)."""
    key = _key(label)
    each = plain(label).replace("-", "")
    return (key,) if each == key else (key, each)


def _short_tokens(label: str) -> list[str]:
    return sorted(t for t in label.split("-") if len(t) <= 2)


class _Label:
    """One protected label and the engine's rules for what may be done to it."""

    def __init__(self, label: str) -> None:
        self.text = label
        self.keys = _keys(label)
        self.key = self.keys[0]
        self.typos = len(self.key) >= MIN_TYPO_LENGTH
        self.first = 0 if len(self.key) >= SHORT_LABEL else 1  # typos start here
        self.short = _short_tokens(label)

    def typo(self, candidate: str) -> bool:
        """A typo the engine names as one: read the same, or one edit away (the first edit it finds, as it
        finds it) that keeps the first letter of a short label and the one- and two-letter parts."""
        if candidate == self.text or _short_tokens(candidate) != self.short:
            return False
        keys = _keys(candidate)
        if keys[0] == self.key:
            return True
        edit = next((e for key in keys for protected in self.keys if (e := one_edit(key, protected)) is not None),
                    None)
        return (edit is not None and len(keys[0]) >= MIN_TYPO_LENGTH - 1
                and (edit.position > 0 or len(self.key) >= SHORT_LABEL))


# --- label techniques: each yields candidate labels ------------------------------------------------

def _homoglyphs(label: _Label) -> Iterator[str]:
    text = label.text
    swaps: list[tuple[str, str]] = [(read, seen) for seen, read in letters().items() if seen.isascii()]
    swaps += [(read, seen) for seen, read in groups()] + list(groups())
    for read, seen in swaps:  # ASCII letters and groups that read the same: "o"/"0", "m"/"rn", "w"/"vv"
        for match in re.finditer(re.escape(read), text):
            candidate = text[:match.start()] + seen + text[match.end():]
            if _key(candidate) == label.key:
                yield candidate
    if len(label.key) >= MIN_WEAK_LENGTH:  # rough look-alikes of long labels: "n"/"m", "b"/"d", "e"/"c"
        rough = [(a, b) for a, b in weak_letters().items() if a.isascii() and b.isascii()]
        target = weak_key(plain(text)).replace("-", "")
        for a, b in rough + [(b, a) for a, b in rough]:
            for i, ch in enumerate(text):
                if ch == a:
                    candidate = text[:i] + b + text[i + 1:]
                    if weak_key(plain(candidate)).replace("-", "") == target:
                        yield candidate
    for i, ch in enumerate(text):  # Unicode letters, one at a time
        for glyph in watch_glyphs().get(ch, ()):
            yield text[:i] + glyph + text[i + 1:]


def _hyphenation(label: _Label) -> Iterator[str]:
    text = label.text
    for i in range(1, len(text)):
        if text[i - 1] != "-" and text[i] != "-":
            candidate = text[:i] + "-" + text[i:]
            if _key(candidate) == label.key:
                yield candidate
    for i, ch in enumerate(text):
        if ch == "-":
            candidate = text[:i] + text[i + 1:]
            if _key(candidate) == label.key:
                yield candidate


def _typos(label: _Label, make: Callable[[str, int], Iterable[str]]) -> Iterator[str]:
    if not label.typos:
        return
    for i in range(label.first, len(label.text)):
        if label.text[i] != "-":
            yield from (c for c in make(label.text, i) if label.typo(c))


def _transpositions(text: str, i: int) -> Iterator[str]:
    if i + 1 < len(text) and text[i + 1] not in ("-", text[i]):
        yield text[:i] + text[i + 1] + text[i] + text[i + 2:]


def _vowel_swaps(text: str, i: int) -> Iterator[str]:
    if text[i] in VOWELS:
        yield from (text[:i] + v + text[i + 1:] for v in sorted(VOWELS - {text[i]}))


def _omissions(text: str, i: int) -> Iterator[str]:
    yield text[:i] + text[i + 1:]


def _repetitions(text: str, i: int) -> Iterator[str]:
    yield text[:i] + text[i] + text[i:]


def _insertions(text: str, i: int) -> Iterator[str]:
    for near in sorted(keyboard_neighbours().get(text[i], ())):
        yield text[:i] + near + text[i:]
        yield text[:i + 1] + near + text[i + 1:]


def _replacements(text: str, i: int) -> Iterator[str]:
    yield from (text[:i] + near + text[i + 1:] for near in sorted(keyboard_neighbours().get(text[i], ())))


def _bitflips(text: str, i: int) -> Iterator[str]:
    for bit in range(8):
        flipped = chr(ord(text[i]) ^ (1 << bit))
        if flipped in TYPO_CHARACTERS:
            yield text[:i] + flipped + text[i + 1:]


_TYPOS: dict[str, Callable[[str, int], Iterable[str]]] = {
    "transposition": _transpositions, "vowel_swap": _vowel_swaps, "omission": _omissions,
    "repetition": _repetitions, "insertion": _insertions, "replacement": _replacements, "bitflip": _bitflips,
}


def _combosquats(label: _Label, words: Iterable[str]) -> Iterator[str]:
    if len(label.key) < MIN_BRAND_LENGTH:
        return
    brand = word_key(label.text)
    for word in words:
        yield f"{label.text}-{word}"
        yield f"{word}-{label.text}"
        if len(word) >= 3 and word_key(label.text + word) == brand + word_key(word):  # no letter group across
            yield f"{label.text}{word}"


# --- assembling domains ----------------------------------------------------------------------------

def _ascii_label(label: str) -> str | None:
    """The label as it goes on the wire (punycode for Unicode), or None when DNS cannot carry it."""
    if label.isascii():
        ok = len(label) <= MAX_LABEL and _LDH.fullmatch(label) is not None and label[2:4] != "--"
        return label if ok else None
    try:
        encoded = idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    return encoded if len(encoded) <= MAX_LABEL else None


class _Collector:
    def __init__(self, name: DomainName) -> None:
        self.name = name
        self.found: dict[str, Permutation] = {}

    def add(self, label: str, technique: str, suffix: str | None = None) -> None:
        suffix = suffix or self.name.suffix
        if not label.isascii() and suffix in watch_no_idn():
            return
        ascii_label = _ascii_label(label)
        if ascii_label is None:
            return
        domain = f"{ascii_label}.{suffix}"
        if domain == self.name.registrable or domain in self.found:
            return
        parts = split_host(domain)
        if parts is None or parts.registrable != domain or parts.suffix != suffix:
            return  # the candidate is not a name of its own under that suffix
        self.found[domain] = Permutation(domain, self.name.registrable, technique)


def permutations(domain: str, suffixes: Iterable[str] | None = None,
                 words: Iterable[str] | None = None) -> list[Permutation]:
    """Every candidate lookalike of ``domain``'s registrable domain, in ``TECHNIQUES`` order.

    ``suffixes`` are the TLD swaps (default: ``[watch] suffixes`` of the data file), ``words`` the combosquat
    words (default: ``[watch] words``)."""
    name = split_host(domain)
    if name is None:
        return []
    label = _Label(name.label_unicode)
    out = _Collector(name)
    for candidate in _homoglyphs(label):
        out.add(candidate, "homoglyph")
    for candidate in _hyphenation(label):
        out.add(candidate, "hyphenation")
    for technique, make in _TYPOS.items():
        for candidate in _typos(label, make):
            out.add(candidate, technique)
    for suffix in suffixes if suffixes is not None else watch_suffixes():
        suffix = suffix.strip(".").lower()
        if suffix and suffix != name.suffix:
            out.add(label.text, "tld_swap", suffix)
    for candidate in _combosquats(label, words if words is not None else watch_words()):
        out.add(candidate, "combosquat")
    return list(out.found.values())
