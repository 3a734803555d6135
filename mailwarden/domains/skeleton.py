"""What a domain label looks like, as opposed to what it spells: skeletons for homoglyph matching.

    skeleton("veltrо-electronics") == skeleton("veltro-electronics")    # Cyrillic о
    skeleton("marlowfenvvick") == skeleton("marlowfenwick")

``plain`` reads each character on its own: its Unicode TR39 prototype (from the confusables table that
the ``confusable_homoglyphs`` package ships), accents dropped, modified Latin letters as their base letter
("ł" as "l"), lower case, and the single letters of ``data/lookalikes.toml`` ("1" as "l"). ``skeleton`` then
reads letter groups ("rn" as "m", "vv" as "w", "cl" as "d"). ``weak_key`` goes further (n/m, b/d, e/c) and is
only a way to find rough look-alikes of long names.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache, lru_cache
from importlib import resources

from mailwarden.domains.data import groups, letters, weak_groups, weak_letters

_MARKS = "\u200e\u200f"  # direction marks the package wraps right-to-left characters in
# "LATIN SMALL LETTER R WITH STROKE", "LATIN SMALL LETTER U BAR", "LATIN LETTER SMALL CAPITAL M"
_LATIN_NAME = re.compile(r"LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL |DOTLESS |SCRIPT )?([A-Z])(?: .*)?")


@cache
def _tr39_prototypes() -> dict[int, str]:
    """Each confusable character to its TR39 prototype.

    The package stores the table symmetrically (a prototype lists its look-alikes, a look-alike lists its
    prototype), so the direction is recovered: a prototype has several entries, a look-alike one. A pair
    that only knows each other maps to the ASCII side, or else to the lower code point. An ASCII prototype
    of several letters is read as the data file's groups read it ("𝐦" -> "rn" -> "m").
    """
    import confusable_homoglyphs

    path = resources.files(confusable_homoglyphs).joinpath("confusables.json")
    raw: dict[str, list[dict[str, str]]] = json.loads(path.read_text(encoding="utf-8"))
    table = {key.strip(_MARKS): [e["c"].strip(_MARKS) for e in entries] for key, entries in raw.items()}
    prototypes: dict[int, str] = {}
    for key, entries in table.items():
        if len(key) != 1 or key.isascii() or len(entries) != 1:
            continue  # ASCII is read by the data file's letters and groups, the same in every label
        target = entries[0]
        if not target or target == key:
            continue
        if len(target) > 1 or len(table.get(target, ())) > 1 or target.isascii() or ord(target) < ord(key):
            prototypes[ord(key)] = _apply(target, groups()) if target.isascii() else target
    return prototypes


@lru_cache(maxsize=4096)
def _latin_base(ch: str) -> str:
    """The ASCII letter a modified Latin letter is built on ("ł" -> "l", "ᴍ" -> "m"), else the character."""
    extra = letters().get(ch)
    if extra is not None:
        return extra
    match = _LATIN_NAME.fullmatch(unicodedata.name(ch, ""))
    return match.group(1).lower() if match else ch


def _without_marks(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def _unicode_plain(label: str) -> str:
    text = _without_marks(label)
    text = "".join(ch if ch.isascii() else _latin_base(ch) for ch in text)
    text = _without_marks(text.translate(_tr39_prototypes())).lower()
    return "".join(ch if ch.isascii() else _latin_base(ch) for ch in text)


@cache
def _ascii_letters(fold_digits: bool) -> dict[int, str]:
    return {ord(k): v for k, v in letters().items() if k.isascii() and (fold_digits or not k.isdigit())}


@lru_cache(maxsize=65536)
def plain(label: str, fold_digits: bool = True) -> str:
    """Each character read on its own: "раура1" -> "paypal"; ``fold_digits=False`` keeps digits as digits."""
    text = label.lower()
    if not text.isascii():
        text = _unicode_plain(text)
    return text.translate(_ascii_letters(fold_digits))


def _apply(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for seen, read in pairs:
        if seen in text:
            text = text.replace(seen, read)
    return text


@lru_cache(maxsize=65536)
def skeleton(label: str, fold_digits: bool = True) -> str:
    """How a label reads: "раypal" (Cyrillic р, а), "paypa1" and "paypal" share one skeleton."""
    return _apply(plain(label, fold_digits), groups())


@cache
def _weak_table() -> dict[int, str]:
    return {ord(k): v for k, v in weak_letters().items()}


def weak_key(plain_text: str) -> str:
    """A coarser key of a plain reading: letters that only roughly look alike (n/m, b/d, e/c) made one."""
    return _apply(plain_text.translate(_weak_table()), weak_groups())


def scripts(label: str) -> list[str]:
    """The scripts of the letters in a label, in order of appearance ("LATIN", "CYRILLIC")."""
    found: list[str] = []
    for ch in label:
        if not ch.isalpha():
            continue
        script = "LATIN" if ch.isascii() else unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
        if script not in found:
            found.append(script)
    return found


def foreign_letters(label: str, limit: int = 3) -> list[str]:
    """The non-ASCII letters of a label with their Unicode names, for evidence ("о CYRILLIC SMALL LETTER O")."""
    out = []
    for ch in dict.fromkeys(c for c in label if not c.isascii()):
        out.append(f"{ch} {unicodedata.name(ch, hex(ord(ch)))}")
        if len(out) >= limit:
            break
    return out
