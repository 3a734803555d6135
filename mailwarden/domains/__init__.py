"""Domain similarity: does a domain imitate one of the organisation's or its partners' domains?

    index = DomainIndex.for_org(org)            # built once per process (``Context.domain_index``)
    index.check("castlegatepolyrners.co.uk")    # -> Lookalike(lookalike_of=..., technique=..., score=...)

Modules, one concern each: ``names`` (a host into subdomains, label and public suffix), ``skeleton`` (how a
label reads: Unicode TR39 confusables and ASCII look-alikes), ``edits`` (naming a typo), ``combosquat``
(words around a brand), ``index`` (the protected set and the look-ups), ``data`` (``data/lookalikes.toml``);
around the engine: ``permutations`` (the lookalikes of a domain someone could register), ``watch`` (which of them
exist in DNS, and what is new), ``notify`` (telling partners about lookalikes of the own domains), ``discovery``
(correspondent domains to protect as partners).
"""

from __future__ import annotations

from mailwarden.domains.index import DomainIndex, Lookalike, ProtectedDomain, protected_for_org

__all__ = ["DomainIndex", "Lookalike", "ProtectedDomain", "protected_for_org"]
