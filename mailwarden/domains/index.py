"""Protected domains, indexed so that one candidate is checked against 100,000 of them in microseconds.

    index = DomainIndex([ProtectedDomain("castlegatepolymers.co.uk", owner="Castlegate", kind="partner")])
    index.check("castlegatepolyrners.co.uk")
      -> Lookalike(lookalike_of="castlegatepolymers.co.uk", technique="homoglyph", score=90, detail="...")

A candidate is compared by the label it registered (see ``names``), never with one protected domain at a time:

* skeletons (``skeleton``) map each protected label to itself: a candidate with the same skeleton is a
  homoglyph, the same label under another suffix a TLD swap, the same letters with other hyphens a hyphenation;
* a deletion neighbourhood (every skeleton with one letter removed) finds the labels one typo away, which
  ``edits.one_edit`` then names (omission, insertion, repetition, replacement, transposition, vowel swap,
  bit flip);
* a coarse key finds rougher look-alikes (n/m, b/d, c/e) of longer labels;
* brands (the label, its first hyphenated word, the first word of the owner's name) with only the words of
  ``data/lookalikes.toml`` around them are combosquats; subdomains are checked for a protected domain or label
  (``ledgerline.io.account-verify.net``) and for a label cut by a dot (``goo.gle.com``).

A name at or below a protected or allowed domain is never flagged, so an owner's other listed domains are not
lookalikes of it. Short labels are compared as a whole only: typos need ``MIN_TYPO_LENGTH`` letters and must
keep the first letter below ``SHORT_LABEL``; rough look-alikes need ``MIN_WEAK_LENGTH``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailwarden.domains.combosquat import is_padding_word, padding, padding_ends, word_key
from mailwarden.domains.edits import Edit, one_edit
from mailwarden.domains.names import DomainName, split_host
from mailwarden.domains.skeleton import foreign_letters, plain, scripts, skeleton, weak_key

if TYPE_CHECKING:
    from mailwarden.config import OrgConfig

MIN_TYPO_LENGTH = 5  # letters in a protected label before one typo away counts
SHORT_LABEL = 6  # below this, a typo must keep the first letter
MIN_WEAK_LENGTH = 6
MIN_BRAND_LENGTH = 4  # a whole label as the brand of a combosquat
MIN_WORD_BRAND_LENGTH = 6  # a word of a label or of the owner's name as a brand
MIN_SUBDOMAIN_LABEL = 6  # a protected label on its own as a subdomain of someone else's domain
CACHE_SIZE = 65536

# Confidence (0-100) per technique; typos of longer labels are surer.
SCORES = {"homoglyph_unicode": 95, "homoglyph": 90, "homoglyph_rough": 70, "tld_swap": 85, "hyphenation": 85,
          "subdomain_domain": 90, "subdomain_split": 80, "subdomain_label": 75, "combosquat_label": 80,
          "combosquat_word": 70, "combosquat_lookalike": 75}
KIND_ORDER = {"own": 0, "partner": 1, "protected": 2}


def _typo_score(length: int) -> int:
    return 80 if length >= 9 else 75 if length >= 7 else 65


@dataclass(frozen=True, slots=True)
class ProtectedDomain:
    """A domain to protect: the organisation's own, a partner's, or one given on the command line."""

    domain: str
    owner: str = ""  # who it belongs to, for evidence
    kind: str = "protected"  # own | partner | protected
    brands: tuple[str, ...] = ()  # distinctive words besides the label (the first word of the owner's name)


@dataclass(frozen=True, slots=True)
class Lookalike:
    """A candidate that imitates a protected domain, how, and how sure the engine is (0-100)."""

    domain: str
    lookalike_of: str
    technique: str
    score: int
    detail: str
    kind: str = "protected"
    owner: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "lookalike_of": self.lookalike_of, "technique": self.technique,
                "score": self.score, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class _Entry:
    protected: ProtectedDomain
    name: DomainName
    keys: tuple[str, ...]  # the skeleton, and the letter-by-letter reading when groups changed it
    written: str  # the label as written (Unicode, lower case), hyphens removed
    brands: tuple[str, ...]  # the label (digits kept), then distinctive words, as combosquat brands

    @property
    def key(self) -> str:
        return self.keys[0]


class _Postings:
    """Keys to entry numbers, stored by hash with a bare number for the usual single entry: small in memory.
    A hash collision only adds a candidate that the caller's verification drops."""

    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map: dict[int, int | tuple[int, ...]] = {}

    def add(self, key: str, index: int) -> None:
        code = hash(key)
        old = self._map.get(code)
        if old is None:
            self._map[code] = index
        elif isinstance(old, int):
            if old != index:
                self._map[code] = (old, index)
        elif index not in old:
            self._map[code] = (*old, index)

    def get(self, key: str) -> tuple[int, ...]:
        found = self._map.get(hash(key))
        if found is None:
            return ()
        return (found,) if isinstance(found, int) else found

    def gather(self, keys: Iterable[str], into: set[int]) -> None:
        """Add the entries of every key to ``into`` (the hot loop of a check)."""
        lookup = self._map.get
        for key in keys:
            found = lookup(hash(key))
            if found is not None:
                if isinstance(found, int):
                    into.add(found)
                else:
                    into.update(found)


def _key(label: str) -> str:
    return skeleton(label).replace("-", "")


def _keys(label: str) -> tuple[str, ...]:
    """The skeleton of a label and, when letter groups changed it, its letter-by-letter reading."""
    key = _key(label)
    each = plain(label).replace("-", "")
    return (key,) if each == key else (key, each)


def _weak(label: str) -> str:
    return weak_key(plain(label)).replace("-", "")


def deletions(text: str) -> list[str]:
    return [text[:i] + text[i + 1:] for i in range(len(text))]


class DomainIndex:
    """Protected domains and the keys that find their lookalikes; ``check`` one candidate at a time."""

    def __init__(self, protected: Iterable[ProtectedDomain | str], allowed: Iterable[str] = ()) -> None:
        self._entries: list[_Entry] = []
        self._domains: dict[str, int] = {}  # registrable domain (and the name as configured) -> entry
        self._allowed: set[str] = set()
        self._exact = _Postings()  # skeleton -> entries
        self._near = _Postings()  # skeleton, and skeleton less one letter -> entries
        self._weak = _Postings()
        self._brands = _Postings()  # a label (digits kept) or a distinctive word -> entries
        self._cache: dict[str, Lookalike | None] = {}
        for domain in allowed:
            name = split_host(domain)
            self._allowed.add(name.host if name else domain.strip().lower())
        for item in protected:
            self._add(item if isinstance(item, ProtectedDomain) else ProtectedDomain(item))

    @classmethod
    def for_org(cls, org: OrgConfig, allowed: Iterable[str] = (),
                extra: Iterable[ProtectedDomain] = ()) -> DomainIndex:
        """The organisation's own domains and its partners' domains, then ``extra`` (protected in the store)."""
        return cls([*protected_for_org(org), *extra], allowed)

    def __len__(self) -> int:
        return len(self._entries)

    # --- building ---------------------------------------------------------------------------------

    def _add(self, protected: ProtectedDomain) -> None:
        name = split_host(protected.domain)
        if name is None or name.registrable in self._domains:
            return
        keys = _keys(name.label_unicode)
        index = len(self._entries)
        brands = _brands(name, protected)
        self._entries.append(_Entry(protected, name, keys, name.label_unicode.replace("-", ""), brands))
        self._domains[name.registrable] = index
        self._domains.setdefault(name.host, index)
        for key in keys:
            self._exact.add(key, index)
            if len(key) >= MIN_TYPO_LENGTH:
                self._near.add(key, index)
                for shorter in deletions(key):
                    self._near.add(shorter, index)
        if len(keys[0]) >= MIN_WEAK_LENGTH:
            self._weak.add(_weak(name.label_unicode), index)
        for brand in brands:
            if brand:
                self._brands.add(brand, index)

    # --- checking ---------------------------------------------------------------------------------

    def is_known(self, host: str) -> bool:
        """A protected or allowed domain, or a name below one."""
        name = split_host(host)
        return name is not None and self._is_known(name)

    def _is_known(self, name: DomainName) -> bool:
        return any(parent in self._domains or parent in self._allowed for parent in name.parents)

    def check(self, host: str) -> Lookalike | None:
        """The protected domain ``host`` imitates most convincingly, or None."""
        if host in self._cache:
            return self._cache[host]
        found = self._check(host)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[host] = found
        return found

    def _check(self, host: str) -> Lookalike | None:
        name = split_host(host)
        if name is None or not self._entries or self._is_known(name):
            return None
        found = self._label_matches(name)
        found += self._combosquats(name.label_unicode, name, in_subdomain=False)
        if name.subdomains:
            found += self._subdomain_matches(name)
        if name.suffix_kind == "platform":
            found += self._split_label(name, name.label_unicode, name.suffix.split(".", 1)[0])
        if not found:
            return None
        return max(found, key=lambda m: (m.score, -KIND_ORDER.get(m.kind, 3), m.lookalike_of))

    def _match(self, name: DomainName, index: int, technique: str, score: int, detail: str) -> Lookalike:
        entry = self._entries[index]
        if technique not in ("tld_swap", "subdomain", "combosquat") and name.suffix != entry.name.suffix:
            score -= 5
            detail += f", under .{name.suffix} instead of .{entry.name.suffix}"
        return Lookalike(domain=name.host, lookalike_of=entry.name.registrable, technique=technique,
                         score=max(0, min(100, score)), detail=detail, kind=entry.protected.kind,
                         owner=entry.protected.owner)

    def _label_matches(self, name: DomainName) -> list[Lookalike]:
        label = name.label_unicode
        keys = _keys(label)
        same = {i for key in keys for i in self._exact.get(key) if self._entries[i].key == keys[0]}
        if name.suffix_kind == "platform" and any(label == self._entries[i].name.label_unicode for i in same):
            return []  # a tenant named like the brand on a shared service: how partners use those
        found = [self._same_reading(name, index) for index in sorted(same)]
        if len(keys[0]) >= MIN_TYPO_LENGTH - 1:
            found += self._typos(name, keys, same)
        if len(keys[0]) >= MIN_WEAK_LENGTH:
            matched = {f.lookalike_of for f in found}
            for index in self._weak.get(_weak(label)):
                entry = self._entries[index]
                if entry.name.registrable not in matched and _weak(entry.name.label_unicode) == _weak(label):
                    found.append(self._match(name, index, "homoglyph", SCORES["homoglyph_rough"],
                                             f"'{label}' looks like '{entry.name.label_unicode}'"))
        return found

    def _same_reading(self, name: DomainName, index: int) -> Lookalike:
        """A candidate whose label reads exactly like a protected one."""
        entry = self._entries[index]
        label = name.label_unicode
        if label == entry.name.label_unicode:
            return self._match(name, index, "tld_swap", SCORES["tld_swap"],
                               f"the same name under .{name.suffix} instead of .{entry.name.suffix}")
        if label.replace("-", "") == entry.written:
            return self._match(name, index, "hyphenation", SCORES["hyphenation"],
                               f"'{label}' hyphenated like '{entry.name.label_unicode}'")
        return self._match(name, index, "homoglyph", *_homoglyph(label, entry.name.label_unicode))

    def _typos(self, name: DomainName, keys: tuple[str, ...], same: set[int]) -> list[Lookalike]:
        near: set[int] = set()
        for key in keys:
            self._near.gather([key, *deletions(key)], near)
        found = []
        for index in sorted(near - same):
            entry = self._entries[index]
            if len(entry.key) < MIN_TYPO_LENGTH:
                continue
            edit = next((e for key in keys for protected in entry.keys
                         if (e := one_edit(key, protected)) is not None), None)
            if edit is not None and _plausible_typo(edit, name.label_unicode, entry):
                found.append(self._match(name, index, edit.technique, _typo_score(len(entry.key)),
                                         f"{edit.detail} in '{name.label_unicode}'"))
        return found

    def _brands_in(self, label: str, strict: bool) -> list[tuple[int, int, str, tuple[str, ...]]]:
        """(entry, score, brand, words) for each brand in ``label`` with only combosquat words around it."""
        spelt = skeleton(label, fold_digits=False)
        text = spelt.replace("-", "")
        hyphens = {0, len(text)} | {i - n for n, i in enumerate(i for i, ch in enumerate(spelt) if ch == "-")}
        hits: list[tuple[int, int, str, tuple[str, ...]]] = []
        if len(text) < MIN_BRAND_LENGTH + 2:
            return hits
        for start in padding_ends(text):
            for end in range(start + MIN_BRAND_LENGTH, len(text) + 1):
                found: set[int] = set()
                self._brands.gather((text[start:end],), found)
                if not found or end - start == len(text):
                    continue  # nothing, or the whole label: a match of its own kind, not a combosquat
                piece = text[start:end]
                indexes = [i for i in sorted(found) if piece in self._entries[i].brands]
                if not indexes:
                    continue
                words = padding(text[:start], text[end:], start in hyphens and end in hyphens, strict)
                if words is not None:
                    hits += [(i, SCORES["combosquat_label" if piece == self._entries[i].brands[0] else
                                        "combosquat_word"], piece, words) for i in indexes]
        return hits

    def _combosquats(self, label: str, name: DomainName, in_subdomain: bool) -> list[Lookalike]:
        found: list[Lookalike] = []
        where = f"'{label}'" + (f" (a subdomain of {name.registrable})" if in_subdomain else "")
        strict = not in_subdomain and name.suffix_kind != "platform"
        for index, score, brand, words in self._brands_in(label, strict):
            found.append(self._match(name, index, "combosquat", score - 5 * in_subdomain,
                                     f"brand '{brand}' with '{'-'.join(words)}' in {where}"))
        tokens = [t for t in label.split("-") if t]
        if len(tokens) > 1 and not found:  # a brand spelt with look-alike letters between hyphens
            for i, token in enumerate(tokens):
                key = _key(token)
                if len(key) < MIN_BRAND_LENGTH or padding("", word_key("-".join(tokens[:i] + tokens[i + 1:])),
                                                          hyphenated=True) is None:
                    continue
                for index in self._exact.get(key):
                    if self._entries[index].key == key:
                        found.append(self._match(name, index, "combosquat",
                                                 SCORES["combosquat_lookalike"] - 5 * in_subdomain,
                                                 f"brand '{token}' with other words in {where}"))
        return found

    def _subdomain_matches(self, name: DomainName) -> list[Lookalike]:
        found: list[Lookalike] = []
        ascii_labels = name.host.split(".")[:len(name.subdomains)]
        for i in range(len(ascii_labels)):
            for j in range(i + 2, len(ascii_labels) + 1):
                inner = ".".join(ascii_labels[i:j])
                if inner in self._domains:
                    found.append(self._match(name, self._domains[inner], "subdomain", SCORES["subdomain_domain"],
                                             f"{inner} used as a subdomain of {name.registrable}"))
        for label in name.subdomains:
            key = _key(label)
            if len(key) >= MIN_SUBDOMAIN_LABEL:
                for index in self._exact.get(key):
                    if self._entries[index].key == key:
                        found.append(self._match(name, index, "subdomain", SCORES["subdomain_label"],
                                                 f"'{label}' used as a subdomain of {name.registrable}"))
            found += self._combosquats(label, name, in_subdomain=True)
        found += self._split_label(name, name.subdomains[-1], name.label_unicode)
        return found

    def _split_label(self, name: DomainName, first: str, second: str) -> list[Lookalike]:
        """A protected label cut in two by a dot ("goo.gle.com", "drop.box.com")."""
        joined = _key(first + second)
        if len(joined) < MIN_BRAND_LENGTH:
            return []
        return [self._match(name, index, "subdomain", SCORES["subdomain_split"],
                            f"'{first}.{second}' reads as '{self._entries[index].name.label_unicode}'")
                for index in self._exact.get(joined) if self._entries[index].key == joined]


def protected_for_org(org: OrgConfig) -> list[ProtectedDomain]:
    """The own and partner domains of an org.toml, with the first word of each name as a brand."""
    protected = [ProtectedDomain(d, owner=org.name, kind="own", brands=_name_brand(org.name, d))
                 for d in org.domains]
    for partner in org.partners:
        protected += [ProtectedDomain(d, owner=partner.name, kind="partner", brands=_name_brand(partner.name, d))
                      for d in partner.domains]
    return protected


def _short_tokens(label: str) -> list[str]:
    return sorted(t for t in label.split("-") if len(t) <= 2)


def _plausible_typo(edit: Edit, label: str, entry: _Entry) -> bool:
    """A typo of a short name keeps its first letter, and none makes or changes a one- or two-letter part
    between hyphens ("s-msedge" is a sibling of "t-msedge", not a typo of it)."""
    if edit.position == 0 and len(entry.key) < SHORT_LABEL:
        return False
    return _short_tokens(label) == _short_tokens(entry.name.label_unicode)


def _homoglyph(label: str, protected_label: str) -> tuple[int, str]:
    if label.isascii():
        return SCORES["homoglyph"], f"'{label}' reads as '{protected_label}'"
    mixed = scripts(label)
    letters = ", ".join(foreign_letters(label))
    if len(mixed) > 1:
        return SCORES["homoglyph_unicode"], (f"'{label}' mixes {' and '.join(s.title() for s in mixed)} "
                                             f"letters ({letters})")
    return SCORES["homoglyph_unicode"], f"'{label}' is spelt with look-alike letters ({letters})"


def _brands(name: DomainName, protected: ProtectedDomain) -> tuple[str, ...]:
    """The label as a brand (when long enough), then its first hyphenated word and the given brands."""
    label = word_key(name.label_unicode)
    words = [word_key(w) for w in (name.label_unicode.split("-", 1)[0], *protected.brands)]
    words = [w for w in dict.fromkeys(words) if w != label and len(w) >= MIN_WORD_BRAND_LENGTH
             and not is_padding_word(w)]
    return (label if len(label) >= MIN_BRAND_LENGTH else "", *words)


def _name_brand(name: str, domain: str) -> tuple[str, ...]:
    """The first word of an owner's name when the domain's label starts with it ("Castlegate Polymers")."""
    words = re.findall(r"[^\W\d_]+", name.lower())
    parts = split_host(domain)
    if not words or len(words[0]) < MIN_WORD_BRAND_LENGTH or parts is None:
        return ()
    return (words[0],) if word_key(parts.label_unicode).startswith(word_key(words[0])) else ()
