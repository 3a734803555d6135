"""The engine's data (``mailwarden/data/lookalikes.toml``), read once per process."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any


@cache
def _document() -> dict[str, Any]:
    text = resources.files("mailwarden").joinpath("data/lookalikes.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _pairs(table: str) -> tuple[tuple[str, str], ...]:
    return tuple((str(seen), str(read)) for seen, read in _document()[table].items())


@cache
def letters() -> dict[str, str]:
    """Single characters read as an ASCII letter or digit ("1" as "l", "ŋ" as "n")."""
    return dict(_pairs("letters"))


@cache
def groups() -> tuple[tuple[str, str], ...]:
    """Letter groups read as one letter ("rn" as "m"), in the order they apply."""
    return _pairs("groups")


@cache
def weak_letters() -> dict[str, str]:
    """Letters that only roughly look alike ("n" as "m"), for the coarse homoglyph key."""
    return dict(_pairs("weak_letters"))


@cache
def weak_groups() -> tuple[tuple[str, str], ...]:
    return _pairs("weak_groups")


@cache
def keyboards() -> dict[str, tuple[str, ...]]:
    """Keyboard layouts as rows of keys, top to bottom."""
    return {name: tuple(rows) for name, rows in _document()["keyboards"].items()}


@cache
def combosquat_lures() -> frozenset[str]:
    """Words that ask for something next to a brand ("billing", "login", "it")."""
    return frozenset(_document()["combosquat"]["lures"])


@cache
def combosquat_fillers() -> frozenset[str]:
    """Words that only pad a brand ("group", "uk", "online")."""
    return frozenset(_document()["combosquat"]["fillers"])


@cache
def platform_suffixes() -> frozenset[str]:
    return frozenset(_document()["platforms"]["suffixes"])


@cache
def combosquat_suffix_words() -> frozenset[str]:
    """Public-suffix words run onto a brand ("marlowfenwickco")."""
    return frozenset(_document()["combosquat"]["suffix_words"])


# --- the lookalike watch (``permutations``) ---------------------------------------------------------

@cache
def watch_suffixes() -> tuple[str, ...]:
    """The suffixes a protected label is tried under (TLD and second-level swaps)."""
    return tuple(str(s) for s in _document()["watch"]["suffixes"])


@cache
def watch_words() -> tuple[str, ...]:
    """Words tried before and after a brand (combosquats)."""
    return tuple(str(w) for w in _document()["watch"]["words"])


@cache
def watch_no_idn() -> frozenset[str]:
    """Suffixes where no internationalised names are sold."""
    return frozenset(_document()["watch"]["no_idn"])


@cache
def watch_glyphs() -> dict[str, tuple[str, ...]]:
    """Unicode letters tried in place of an ASCII letter."""
    return {str(letter): tuple(glyphs) for letter, glyphs in _document()["watch"]["glyphs"].items()}
