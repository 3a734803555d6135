"""Domain similarity: does a domain imitate one of the organisation's or its partners' domains?

    index = DomainIndex.for_org(org)            # built once per process (``Context.domain_index``)
    index.check("castlegatepolyrners.co.uk")    # -> Lookalike(lookalike_of=..., technique=..., score=...)

Modules, one concern each: ``names`` (a host into subdomains, label and public suffix), ``skeleton`` (how a
label reads: Unicode TR39 confusables and ASCII look-alikes), ``edits`` (naming a typo), ``combosquat``
(words around a brand), ``index`` (the protected set and the look-ups), ``data`` (``data/lookalikes.toml``).
"""

from __future__ import annotations

from mailwarden.domains.index import DomainIndex, Lookalike, ProtectedDomain, protected_for_org

__all__ = ["DomainIndex", "Lookalike", "ProtectedDomain", "protected_for_org"]
