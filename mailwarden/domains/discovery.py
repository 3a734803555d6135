"""Partner discovery: the domains the organisation corresponds with most, and domains protected from the store.

    suggest_partners(profiles, org, freemail)  -> [Suggestion("castlegate-supplies.com", messages=41, ...), ...]
    protect(engine, suggestions[:3], now)      -> the domains newly stored in ``protected_domains``
    load_protected_domains(settings)           -> (ProtectedDomain(..., kind="partner"), ...)

A suggestion is a registrable domain that learned mail came from (``Profiles.domains``), by message count,
that is none of the organisation's own domains, no partner's and no free-mail provider's, so that an admin
can add it to org.toml as a partner. Protected domains in the store count as partners for the similarity
engine (``Context.for_org(..., protected=...)``) and for the lookalike watch, until org.toml lists them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from mailwarden.domains.index import ProtectedDomain
from mailwarden.store.db import begin_write, parse_url, sqlite_file, store_errors
from mailwarden.store.models import Base
from mailwarden.urls import registrable_domain

if TYPE_CHECKING:
    from mailwarden.config import OrgConfig, Settings
    from mailwarden.profiles import Profiles

PROTECTED: Table = Base.metadata.tables["protected_domains"]
SUGGESTED = "suggested"


@dataclass(frozen=True)
class Suggestion:
    """A correspondent domain worth protecting: how much mail came from it, from how many senders, when."""

    domain: str
    messages: int
    senders: int
    first_seen: datetime
    last_seen: datetime
    protected: bool = False  # already in the store's protected domains

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "messages": self.messages, "senders": self.senders,
                "first_seen": self.first_seen.isoformat(), "last_seen": self.last_seen.isoformat(),
                "protected": self.protected}


def suggest_partners(profiles: Profiles, org: OrgConfig, freemail: Iterable[str],
                     protected: Iterable[str] = (), top: int | None = None) -> list[Suggestion]:
    """Correspondent domains by volume (messages, then the most recent), without own, partner and free-mail
    domains; ``protected`` names the domains already protected in the store."""
    free = frozenset(freemail)
    stored = frozenset(protected)
    senders: Counter[str] = Counter(registrable_domain(key.rpartition("@")[2]) for key in profiles.senders)
    found = []
    for domain, profile in profiles.domains.items():
        if (profile.count <= 0 or domain in free or registrable_domain(domain) in free
                or org.is_own_domain(domain) or org.partner_for_domain(domain) is not None):
            continue
        found.append(Suggestion(domain, profile.count, senders.get(domain, 0), profile.first_seen, profile.last_seen,
                                protected=domain in stored))
    found.sort(key=lambda s: (-s.messages, -s.last_seen.timestamp(), s.domain))
    return found if top is None else found[:top]


# --- protected domains in the store --------------------------------------------------------------------

def stored_protected(engine: Engine) -> list[str]:
    """The domains in ``protected_domains``, oldest first."""
    with store_errors("read protected domains from", engine.url), engine.connect() as connection:
        return [str(row.domain) for row in connection.execute(select(PROTECTED.c.domain).order_by(PROTECTED.c.id))]


def protect(engine: Engine, suggestions: Iterable[Suggestion], now: datetime, source: str = SUGGESTED) -> list[str]:
    """Store the suggested domains as protected; returns those that were not protected yet."""
    rows: list[dict[str, Any]] = [{"domain": s.domain, "source": source, "messages": s.messages, "created_at": now}
                                  for s in suggestions]
    if not rows:
        return []
    added: list[str] = []
    with store_errors("save protected domains to", engine.url), begin_write(engine) as connection:
        dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        for row in rows:
            statement = dialect_insert(PROTECTED).values(**row).on_conflict_do_nothing(index_elements=["domain"])
            if connection.execute(statement.returning(PROTECTED.c.id)).first() is not None:  # inserted
                added.append(row["domain"])
    return added


def as_protected(domains: Iterable[str]) -> tuple[ProtectedDomain, ...]:
    """Stored domains as the engine protects them: partners (their owner not named yet)."""
    return tuple(ProtectedDomain(d, kind="partner") for d in domains)


def load_protected_domains(settings: Settings) -> tuple[ProtectedDomain, ...]:
    """The store's protected domains for scanning; empty, without creating anything, before the store exists."""
    from mailwarden.store import Store

    path = sqlite_file(parse_url(settings.database_url))
    if path is not None and not path.exists():
        return ()
    with Store.open(settings) as store:
        return as_protected(stored_protected(store.engine))
