"""Detection data loaded once per process: lure phrases, brands, hosting lists, free-mail domains.

The lists live in ``mailwarden/data`` as TOML/text so they are reviewed and tested as data. Text is
compared after ``fold``: NFKC (so mathematical bold letters read as letters), look-alike letters mapped to
Latin, accents removed, lower case.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

# Cyrillic/Greek/Cherokee letters that render like Latin ones, as used in "Ꮮеdgеr" or "Аpple".
_CONFUSABLES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ɡ": "g", "һ": "h", "ӏ": "l", "ո": "n", "ս": "u", "ԝ": "w", "ᴠ": "v", "ı": "i", "ο": "o", "α": "a", "ε": "e",
    "ι": "i", "κ": "k", "ν": "v", "τ": "t", "υ": "u", "ρ": "p", "Ꮮ": "l", "Ꭺ": "a", "Ᏼ": "b", "Ꮯ": "c", "Ꭰ": "d",
    "Ꭼ": "e", "Ꮐ": "g", "Ꮋ": "h", "Ꮖ": "i", "Ꭻ": "j", "Ꮶ": "k", "Ꮇ": "m", "Ꮲ": "p", "Ꮪ": "s", "Ꭲ": "t",
    "Ꮩ": "v", "Ꮃ": "w", "Ꮓ": "z", "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o",
    "Р": "p", "С": "c", "Т": "t", "Х": "x", "Ү": "y", "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "",
    "\u00ad": "", "\ufeff": "",
})


_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


@lru_cache(maxsize=4096)
def _fold_short(text: str) -> str:
    return _fold(text)


# Invisible code points phishers put inside words ("Co\U000e0139inbase") to break keyword matching.
_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\u034f\u00ad\ufeff\U000e0000-\U000e01ef]")
# Small capitals ("ᴘᴀʏᴍᴇɴᴛ") have no NFKC decomposition; map them to their letters.
_SMALL_CAPS = str.maketrans("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡʏᴢ", "abcdefghijklmnopqrstuvwyz")


# Trade-mark signs end a word ("Mcafee™"); NFKC would glue "TM" onto it.
_MARK_SIGNS = str.maketrans({"™": " ", "®": " ", "℠": " ", "©": " "})


def _fold(text: str) -> str:
    if not text.isascii():
        text = _INVISIBLE.sub("", text).translate(_SMALL_CAPS).translate(_MARK_SIGNS)
    # an underscore joins words as a space does ("Unusual_activity_on_your_Account")
    text = unicodedata.normalize("NFKC", text).translate(_CONFUSABLES).lower().replace("_", " ")
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def fold(text: str) -> str:
    """Text as compared against the lists: NFKC, look-alikes to Latin, no accents, lower case, underscores
    as spaces."""
    return _fold_short(text) if len(text) < 200 else _fold(text)


def is_foreign_in_latin_word(word: str) -> bool:
    """A word of Latin letters carrying a letter or mark of another script ("e\u0337ntrega", "servicesܿ")."""
    if not any(c.isascii() and c.isalpha() for c in word):
        return False
    for ch in unicodedata.normalize("NFC", word):
        if ch.isascii() or not (ch.isalpha() or unicodedata.category(ch).startswith("M")):
            continue
        if not unicodedata.name(ch, "").startswith("LATIN"):
            return True
    return False


def is_disguised_letter(ch: str) -> bool:
    """A letter from another script that renders like a Latin one, or a styled (maths) alphabet letter."""
    if ch.isascii():
        return False
    return (ch.translate(_CONFUSABLES) != ch or ch.translate(_SMALL_CAPS) != ch or bool(_INVISIBLE.match(ch))
            or (ord(ch) >= 0x1D400 and unicodedata.normalize("NFKC", ch) != ch))


def _phrase_pattern(phrases: list[str]) -> re.Pattern[str] | None:
    """One pattern for a list of phrases, built as a trie so that the engine tries only the phrases that
    share the text's next letter (a flat alternation of hundreds of phrases is tried one by one at every
    position). Longer phrases are tried before their prefixes; words match across spaces, hyphens and underscores."""
    trie: _Trie = {}
    for phrase in {fold(p) for p in phrases if p.strip()}:
        wildcard = phrase.endswith("*")
        node = trie
        for ch in " ".join(phrase.rstrip("*").split()):
            node = node.setdefault(ch, {})
        node[_WILD if wildcard else _EXACT] = {}
    if not trie:
        return None
    return re.compile(r"(?<!\w)" + _trie_regex(trie))


_Trie = dict[str, "_Trie"]
_EXACT, _WILD = "\x00exact", "\x00wild"  # end-of-phrase marks, never a folded character
_ENDINGS = {_WILD: r"\w*", _EXACT: r"\b(?!['’]\w)"}


# Words of a phrase may be joined by spaces or hyphens ("FREE-SPINS"); folding made underscores spaces.
_WORD_GAP = r"[\s-]+"
_GAP_CHARACTERS = re.compile(_WORD_GAP)


def _trie_regex(node: _Trie) -> str:
    branches = [(_WORD_GAP if ch == " " else re.escape(ch)) + _trie_regex(child)
                for ch, child in sorted(node.items()) if ch not in _ENDINGS]
    branches += [_ENDINGS[end] for end in (_WILD, _EXACT) if end in node]
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


@dataclass(frozen=True)
class LureCategory:
    name: str
    signal: str
    pattern: re.Pattern[str] | None
    needs_phone_number: bool = False  # counts only in a message that also gives a telephone number

    def matches(self, folded_text: str, limit: int = 8) -> list[str]:
        """Distinct phrases of this category found in already-folded text."""
        if self.pattern is None:
            return []
        found: list[str] = []
        for m in self.pattern.finditer(folded_text):
            phrase = _GAP_CHARACTERS.sub(" ", m.group(0))
            if phrase not in found:
                found.append(phrase)
                if len(found) >= limit:
                    break
        return found


@dataclass(frozen=True)
class Brand:
    key: str
    names: tuple[str, ...]
    domains: frozenset[str]
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class DetectionData:
    lures: tuple[LureCategory, ...]
    bec: tuple[LureCategory, ...]
    brands: tuple[Brand, ...]
    brand_pattern: re.Pattern[str] | None
    role_pattern: re.Pattern[str] | None
    collapsed_brand_names: dict[str, str]
    brand_domains: frozenset[str]
    free_hosting: tuple[str, ...]
    file_sharing: tuple[str, ...]
    shorteners: frozenset[str]
    redirect_hosts: frozenset[str]
    redirect_parameters: frozenset[str]
    freemail: frozenset[str]
    services: frozenset[str]
    abused_tlds: frozenset[str]
    attachment_classes: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    domain_brand_cache: dict[str, Brand | None] = field(default_factory=dict, compare=False, repr=False)

    def lure(self, name: str) -> LureCategory:
        return next(c for c in self.lures if c.name == name)

    def bec_scheme(self, name: str) -> LureCategory:
        return next(c for c in self.bec if c.name == name)

    def brands_named_in(self, folded_text: str) -> list[Brand]:
        if self.brand_pattern is None or not folded_text:
            return []
        names = {_GAP_CHARACTERS.sub(" ", m.group(0)) for m in self.brand_pattern.finditer(folded_text)}
        return [b for b in self.brands if any(n in names for n in b.names)]

    def is_brand_domain(self, registrable: str) -> bool:
        return registrable in self.brand_domains

    def brand_in_domain(self, registrable: str) -> Brand | None:
        """A brand name at the start of a label of someone else's domain ("paypal-secure.example")."""
        if registrable not in self.domain_brand_cache:
            if len(self.domain_brand_cache) > 100_000:
                self.domain_brand_cache.clear()
            self.domain_brand_cache[registrable] = self._brand_in_domain(registrable)
        return self.domain_brand_cache[registrable]

    def _brand_in_domain(self, registrable: str) -> Brand | None:
        if registrable in self.brand_domains or registrable in _SHARED_TENANT_DOMAINS:
            return None
        label = registrable.split(".")[0]
        segments = re.split(r"[-0-9]+", label)
        tails = ["".join(segments[i:]) for i in range(len(segments)) if segments[i]]
        for name, key in self.collapsed_brand_names.items():
            if len(name) >= 5 and any(t.startswith(name) for t in tails):
                brand = next(b for b in self.brands if b.key == key)
                if not any(registrable == d or registrable.endswith("." + d) for d in brand.domains):
                    return brand
        return None

    def brands_hidden_in(self, folded_name: str) -> list[Brand]:
        """Brands spelt out with separators or typos in a short name ("A D A C", "Liberty_Mutual", "Microsft")."""
        words = re.findall(r"[a-z0-9]+", folded_name)[:20]
        # runs of whole words written together: "liberty_mutual" -> "libertymutual", never "ledger" in "ledgerline"
        runs = {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, min(len(words), i + 5) + 1)}
        # a name spelt letter by letter ("F.e.d.E.x", "N e t f l i x") is deliberate even when short
        spelt = {m.group(0).replace(" ", "") for m in _SPELT_OUT.finditer(" ".join(words))}
        keys = {key for name, key in self.collapsed_brand_names.items() if len(name) >= 6 and name in runs}
        if spelt:
            keys |= {key for name, key in self.collapsed_brand_names.items() if any(name in run for run in spelt)}
        if not keys:
            keys = {key for name, key in self.collapsed_brand_names.items()
                    if len(name) >= 8 and any(_one_edit_apart(word, name) for word in words)}
        return [b for b in self.brands if b.key in keys]


_SPELT_OUT = re.compile(r"\b(?:[a-z0-9] ){3,}[a-z0-9]\b")


def _read(name: str) -> str:
    return resources.files("mailwarden").joinpath("data", name).read_text(encoding="utf-8")


def _toml(name: str) -> dict[str, Any]:
    return tomllib.loads(_read(name))


def _lines(name: str) -> list[str]:
    return [ln.strip().lower() for ln in _read(name).splitlines() if ln.strip() and not ln.startswith("#")]


_LURE_SETTINGS = frozenset({"signal", "needs_phone_number"})  # the other keys of a lure table are languages


@lru_cache(maxsize=1)
def load_detection_data() -> DetectionData:
    lure_doc = _toml("lures.toml")
    lures = tuple(
        LureCategory(name, table["signal"],
                     _phrase_pattern([p for key, values in table.items() if key not in _LURE_SETTINGS for p in values]),
                     needs_phone_number=bool(table.get("needs_phone_number", False)))
        for name, table in lure_doc.items()
    )
    bec = tuple(
        LureCategory(name, f"bec.{name}", _phrase_pattern([p for values in table.values() for p in values]))
        for name, table in _toml("bec.toml").items()
    )
    brands = []
    all_names: list[str] = []
    brand_doc = _toml("brands.toml")
    for key, table in brand_doc["brands"].items():
        names = tuple(fold(n) for n in table["names"])
        all_names.extend(names)
        pattern = _phrase_pattern(list(names))
        assert pattern is not None, f"brand {key} has no names"
        brands.append(Brand(key, names, frozenset(d.lower() for d in table["domains"]), pattern))
    roles = _phrase_pattern(brand_doc["roles"]["names"])
    hosting = _toml("hosting.toml")
    attachments = _toml("attachments.toml")
    return DetectionData(
        lures=lures,
        bec=bec,
        brands=tuple(brands),
        brand_pattern=_phrase_pattern(all_names),
        role_pattern=roles,
        brand_domains=frozenset(d for b in brands for d in b.domains),
        collapsed_brand_names={re.sub(r"[^a-z0-9]", "", n): b.key for b in brands for n in b.names
                               if len(re.sub(r"[^a-z0-9]", "", n)) >= 5},
        free_hosting=tuple(hosting["free_hosting"]["suffixes"]),
        file_sharing=tuple(hosting["free_hosting"]["file_sharing"]),
        shorteners=frozenset(hosting["shorteners"]["suffixes"]),
        redirect_hosts=frozenset(hosting["open_redirects"]["hosts"]),
        redirect_parameters=frozenset(hosting["open_redirects"]["parameters"]),
        freemail=frozenset(_lines("freemail.txt")),
        services=frozenset(_lines("services.txt")),
        abused_tlds=frozenset(hosting["abused_tlds"]["suffixes"]),
        attachment_classes={
            name: (frozenset(t.get("extensions", [])), frozenset(t.get("sniffed", [])))
            for name, t in attachments.items()
        },
    )


# Domains a brand hands out to its customers: the brand name in them is not a claim.
_SHARED_TENANT_DOMAINS = frozenset({"onmicrosoft.com", "sharepoint.com", "zendesk.com", "force.com"})


def _one_edit_apart(a: str, b: str) -> bool:
    """One deletion, insertion, substitution or adjacent swap apart (and not equal)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def host_matches(host: str, suffixes: tuple[str, ...] | frozenset[str]) -> str | None:
    """The listed suffix a host is equal to or below, if any."""
    for suffix in suffixes:
        if host == suffix or host.endswith("." + suffix):
            return suffix
    return None
