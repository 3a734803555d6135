"""The lookalike watch: which permutations of the protected domains exist in DNS, and what is new since last time.

    report = await run_watch(engine, org, resolver, extra=load_protected_domains(settings))
    report.new   -> [Finding(domain="acrne-corp.com", lookalike_of="acme-corp.com", change="registered", ...)]

Candidates are the ``permutations`` of every protected domain (org.toml's own and partner domains, and those
protected in the store) that the similarity engine recognises as lookalikes (a partner's other listed domains
are not). Each is looked up through the configured resolver: NS first, and when the name exists A, AAAA and
MX, at most ``rate`` queries a second and ``concurrency`` candidates at once, at most ``max_queries`` a run
(never-checked candidates first, then those whose answer was unknown, then the longest unchecked).

What an answer means, per candidate:

* NXDOMAIN: ``unregistered``.
* SERVFAIL or a timeout, no records, or NXDOMAIN for some types only: ``unknown``; looked up again next run.
* records: a random label under the candidate's public suffix is looked up once per run. If it does not exist,
  the records are the candidate's own: ``registered``. If it does, the suffix zone (or the resolver) answers
  for any name, and only records that differ from that synthesis count: none is ``wildcard``. If the probe
  fails, ``unknown``: a wildcard or a resolver error is never reported as a registration.

Registered candidates are also looked up in the ``[[auth.dnsbl]]`` domain zones. State lives in the
``lookalike_domains`` table: first and last seen registered, MX (can send and receive mail), A, AAAA, NS, DNSBL
listings. A candidate registered for the first time (or again, after it was gone) or one that gains MX is new:
it is returned, goes to the ``events`` outbox as ``lookalike.found`` and to ``lookalike_indicators``
(source ``lookalike-watch``, tag ``lookalike-of:<domain>``). ``record_seen_in_mail`` does the same for a
lookalike a scan found in mail (source ``lookalike-mail``). Lookalikes of the organisation's own domains
are then told to the partners (``notify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Engine, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mailwarden.auth.dnsbl import listing_codes
from mailwarden.config import DnsblZone, OrgConfig, WatchSettings
from mailwarden.domains.index import DomainIndex, ProtectedDomain, protected_for_org
from mailwarden.domains.names import split_host
from mailwarden.domains.permutations import permutations
from mailwarden.resolver import DnsAnswer
from mailwarden.store.db import begin_write, store_errors
from mailwarden.store.models import Base
from mailwarden.urls import registrable_domain

if TYPE_CHECKING:
    from mailwarden.domains.notify import Notification
    from mailwarden.pipeline import ScanResult

RECORD_TYPES = ("NS", "A", "AAAA", "MX")
NOERROR, NXDOMAIN, SERVFAIL, TIMEOUT = "NOERROR", "NXDOMAIN", "SERVFAIL", "TIMEOUT"
REGISTERED, UNREGISTERED, WILDCARD, UNKNOWN, SEEN = "registered", "unregistered", "wildcard", "unknown", "seen"
SOURCE_WATCH, SOURCE_MAIL = "lookalike-watch", "lookalike-mail"
EVENT_FOUND = "lookalike.found"
PROBE_PREFIX = "mwprobe"  # the random label that checks a suffix for wildcards starts so
LOOKALIKES: Table = Base.metadata.tables["lookalike_domains"]
INDICATORS: Table = Base.metadata.tables["lookalike_indicators"]


class AsyncResolver(Protocol):
    """What the watch needs of a resolver (``mailwarden.dns.LiveResolver``)."""

    async def aquery(self, name: str, rdtype: str) -> DnsAnswer: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Candidate:
    """A permutation to look up, with what the engine says it imitates and how surely."""

    domain: str
    lookalike_of: str
    technique: str
    score: int
    kind: str  # own | partner | protected
    suffix: str


@dataclass(frozen=True)
class Observation:
    """What DNS said about one candidate. ``records`` are its own (never a wildcard's synthesis)."""

    domain: str
    status: str
    records: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    detail: str = ""
    dnsbl: tuple[Mapping[str, Any], ...] = ()

    def has(self, rdtype: str) -> bool:
        return bool(self.records.get(rdtype))


@dataclass(frozen=True)
class Finding:
    """Something new: a lookalike registered (or seen in mail) for the first time, or one that gained MX."""

    candidate: Candidate
    observation: Observation
    change: str  # registered | mail_enabled | seen_in_mail
    first_seen: datetime

    @property
    def domain(self) -> str:
        return self.candidate.domain

    def to_dict(self) -> dict[str, Any]:
        seen = self.observation
        return {"domain": self.candidate.domain, "lookalike_of": self.candidate.lookalike_of,
                "technique": self.candidate.technique, "score": self.candidate.score, "whose": self.candidate.kind,
                "change": self.change, "status": seen.status, "mx": seen.has("MX"), "a": seen.has("A"),
                "aaaa": seen.has("AAAA"), "ns": seen.has("NS"),
                "records": {k: list(v) for k, v in seen.records.items()},
                "dnsbl": [dict(d) for d in seen.dnsbl], "first_seen": self.first_seen.isoformat()}


@dataclass
class WatchReport:
    """One run: how many candidates there were and were looked up, with how many queries; what is new."""

    candidates: int = 0
    checked: int = 0
    queries: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    new: list[Finding] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Candidates left for the next run (the query budget ran out)."""
        return self.candidates - self.checked

    def summary(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "checked": self.checked, "skipped": self.skipped,
                "queries": self.queries, "statuses": dict(sorted(self.statuses.items())), "new": len(self.new),
                "notified": sum(n.state == "sent" for n in self.notifications),
                "notify_failed": sum(n.state == "failed" for n in self.notifications)}


# --- candidates --------------------------------------------------------------------------------------

def candidates_for(protected: Iterable[ProtectedDomain], settings: WatchSettings | None = None,
                   index: DomainIndex | None = None) -> list[Candidate]:
    """The permutations of every protected domain that the engine flags, each named once.

    A permutation the engine attributes to another protected domain (a closer match) is kept under that one."""
    protected = list(protected)
    settings = settings or WatchSettings()
    index = index or DomainIndex(protected)
    found: dict[str, Candidate] = {}
    for item in protected:
        for permutation in permutations(item.domain, settings.suffixes or None, settings.words or None):
            if permutation.domain in found:
                continue
            match = index.check(permutation.domain)
            name = split_host(permutation.domain)
            if match is None or name is None:
                continue  # a known relation: another domain of the same owner, or an allowed one
            technique = permutation.technique if match.lookalike_of == permutation.source else match.technique
            found[permutation.domain] = Candidate(permutation.domain, match.lookalike_of, technique, match.score,
                                                  match.kind, name.suffix)
    return list(found.values())


# --- DNS -----------------------------------------------------------------------------------------------

class TokenBucket:
    """At most ``rate`` takes a second on average and ``burst`` at once; waiters are served in turn."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


@dataclass(frozen=True)
class _Wildcard:
    status: str  # none | wildcard | unknown
    records: Mapping[str, frozenset[str]] = field(default_factory=dict)
    detail: str = ""


class Prober:
    """Looks candidates up: rate-limited, ``concurrency`` at once, at most ``max_queries``, wildcard-aware."""

    def __init__(self, resolver: AsyncResolver, *, rate: float, concurrency: int, max_queries: int,
                 dnsbl: Iterable[DnsblZone] = ()) -> None:
        self.resolver = resolver
        self.bucket = TokenBucket(rate)
        self.slots = asyncio.Semaphore(concurrency)
        self.max_queries = max_queries
        self.queries = 0
        self.dnsbl = tuple(z for z in dnsbl if z.kind == "domain")
        self._wildcards: dict[str, asyncio.Task[_Wildcard]] = {}

    async def ask(self, name: str, rdtype: str) -> DnsAnswer | None:
        """The answer, or None when this run's query budget is spent."""
        if self.queries >= self.max_queries:
            return None
        self.queries += 1
        await self.bucket.take()
        return await self.resolver.aquery(name, rdtype)

    async def observe(self, candidate: Candidate) -> Observation | None:
        """What DNS says about the candidate; None when the budget ran out before it was decided."""
        async with self.slots:
            first = await self.ask(candidate.domain, RECORD_TYPES[0])
            if first is None:
                return None
            if first.status == NXDOMAIN:
                return Observation(candidate.domain, UNREGISTERED)
            rest = await asyncio.gather(*(self.ask(candidate.domain, t) for t in RECORD_TYPES[1:]))
            answers: dict[str, DnsAnswer] = {}
            for rdtype, answer in zip(RECORD_TYPES, (first, *rest), strict=True):
                if answer is None:
                    return None
                answers[rdtype] = answer
            seen = await self._classify(candidate, answers)
            if seen is not None and seen.status == REGISTERED and self.dnsbl:
                listings = await self._listings(candidate.domain)
                seen = Observation(seen.domain, seen.status, seen.records, seen.detail, listings)
            return seen

    async def _classify(self, candidate: Candidate, answers: Mapping[str, DnsAnswer]) -> Observation | None:
        domain = candidate.domain
        if any(a.status == NXDOMAIN for a in answers.values()):
            return Observation(domain, UNKNOWN, detail="NXDOMAIN for some record types only")
        failed = ", ".join(f"{t} {a.status}" for t, a in answers.items() if a.status != NOERROR)
        records = {t: tuple(sorted(a.records)) for t, a in answers.items() if a.status == NOERROR and a.records}
        if not records:
            return Observation(domain, UNKNOWN, detail=failed or "exists without A, AAAA, MX or NS records")
        wildcard = await self._wildcard(candidate.suffix)
        if wildcard.status == UNKNOWN:
            return Observation(domain, UNKNOWN, detail=wildcard.detail)
        if wildcard.status == WILDCARD:
            records = {t: r for t, r in records.items() if frozenset(r) != wildcard.records.get(t, frozenset())}
            if not records:
                return Observation(domain, WILDCARD, detail=f"only the wildcard answers of .{candidate.suffix}")
        return Observation(domain, REGISTERED, records, detail=failed)

    def _wildcard(self, suffix: str) -> asyncio.Task[_Wildcard]:
        task = self._wildcards.get(suffix)
        if task is None:
            task = self._wildcards[suffix] = asyncio.ensure_future(self._probe(suffix))
        return task

    async def _probe(self, suffix: str) -> _Wildcard:
        """Does a name nobody registered exist under ``suffix``? Then the zone or the resolver synthesises."""
        name = f"{PROBE_PREFIX}{secrets.token_hex(8)}.{suffix}"
        answers: dict[str, DnsAnswer] = {}
        for rdtype in RECORD_TYPES:
            answer = await self.ask(name, rdtype)
            if answer is None:
                return _Wildcard(UNKNOWN, detail="the query budget ran out before the wildcard check")
            if answer.status == NXDOMAIN:
                return _Wildcard("none")
            if answer.status != NOERROR:
                return _Wildcard(UNKNOWN, detail=f"wildcard check of .{suffix}: {rdtype} {answer.status}")
            answers[rdtype] = answer
        return _Wildcard(WILDCARD, {t: frozenset(a.records) for t, a in answers.items()})

    async def _listings(self, domain: str) -> tuple[Mapping[str, Any], ...]:
        found = []
        for zone in self.dnsbl:
            answer = await self.ask(f"{domain}.{zone.zone}", "A")
            if answer is None:
                break
            codes, meanings = listing_codes(answer.records, zone) if answer.status == NOERROR else ((), ())
            if codes:
                found.append({"zone": zone.zone, "codes": list(codes), "meanings": list(meanings)})
        return tuple(found)


# --- state -----------------------------------------------------------------------------------------------

def _insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if connection.dialect.name == "postgresql" else sqlite.insert(table)


def _inserted(connection: Connection, statement: postgresql.Insert | sqlite.Insert) -> bool:
    """Insert a ``lookalike_domains`` row unless one is there (ON CONFLICT DO NOTHING); was it inserted?
    (RETURNING, since ``rowcount`` is not reliable for inserts with an implicit RETURNING on PostgreSQL.)"""
    conflict_free = statement.on_conflict_do_nothing(index_elements=["domain"]).returning(LOOKALIKES.c.id)
    return connection.execute(conflict_free).first() is not None


def _add_event(connection: Connection, payload: dict[str, Any], now: datetime) -> None:
    """A ``lookalike.found`` row in the ``events`` outbox (the gateway's table, migration 0003)."""
    events = Base.metadata.tables.get("events")
    if events is not None:
        connection.execute(events.insert().values(type=EVENT_FOUND, created_at=now, payload=payload))


def _add_indicator(connection: Connection, candidate: Candidate, seen: Observation, source: str,
                   now: datetime) -> None:
    tags = [f"lookalike-of:{candidate.lookalike_of}", f"technique:{candidate.technique}"]
    tags += ["mx"] if seen.has("MX") else []
    tags += ["dnsbl"] if seen.dnsbl else []
    statement = _insert(connection, INDICATORS).values(
        type="domain", value=candidate.domain, confidence=candidate.score, source=source, tags=tags,
        first_seen=now, last_seen=now, sightings=1)
    connection.execute(statement.on_conflict_do_update(
        index_elements=["type", "value", "source"],
        set_={"last_seen": statement.excluded.last_seen, "confidence": statement.excluded.confidence,
              "tags": statement.excluded.tags, "sightings": INDICATORS.c.sightings + 1}))
    from mailwarden.intel.learn import record_lookalike  # the indicator store (issue 7): shared from there

    record_lookalike(connection, domain=candidate.domain, lookalike_of=candidate.lookalike_of,
                     technique=candidate.technique, confidence=candidate.score, source=source, kind=candidate.kind,
                     now=now, mail_enabled=seen.has("MX"), listed=bool(seen.dnsbl))


def _previous(connection: Connection, domains: Iterable[str] | None = None) -> dict[str, Any]:
    query = select(LOOKALIKES)
    if domains is not None:
        query = query.where(LOOKALIKES.c.domain.in_(list(domains)))
    return {row.domain: row for row in connection.execute(query)}


def _change(old: Any, seen: Observation) -> str | None:
    if seen.status != REGISTERED:
        return None
    if old is None or old.reported_at is None or old.status == UNREGISTERED:
        return "registered"
    if seen.has("MX") and not old.mx:
        return "mail_enabled"
    return None


def _values(candidate: Candidate, seen: Observation, old: Any, now: datetime, change: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {"protected_domain": candidate.lookalike_of, "kind": candidate.kind,
                              "technique": candidate.technique, "score": candidate.score, "status": seen.status,
                              "detail": seen.detail[:500], "last_checked": now}
    if seen.status == UNKNOWN and old is not None:
        return values  # says nothing: what was known stays
    values.update(mx=seen.has("MX"), a=seen.has("A"), aaaa=seen.has("AAAA"), ns=seen.has("NS"),
                  records={k: list(v) for k, v in seen.records.items()}, dnsbl=[dict(d) for d in seen.dnsbl])
    if seen.status == REGISTERED:
        values.update(first_seen=(old.first_seen if old is not None and old.first_seen else now), last_seen=now)
    if change == "registered":
        values["reported_at"] = now
    return values


def save_observations(engine: Engine, observed: Iterable[tuple[Candidate, Observation]], now: datetime,
                      source: str = SOURCE_WATCH) -> list[Finding]:
    """Store what was seen, in one transaction, and return (and publish) what is new."""
    observed = list(observed)
    findings: list[Finding] = []
    with store_errors("save the lookalike watch to", engine.url), begin_write(engine) as connection:
        previous = _previous(connection, [c.domain for c, _ in observed]) if len(observed) < 500 else \
            _previous(connection)
        for candidate, seen in observed:
            old = previous.get(candidate.domain)
            change = _change(old, seen)
            values = _values(candidate, seen, old, now, change)
            if old is None:
                values.setdefault("records", {})
                values.setdefault("dnsbl", [])
                statement = _insert(connection, LOOKALIKES).values(domain=candidate.domain, **values)
                if not _inserted(connection, statement):
                    continue  # another run stored it a moment ago and reports it
            else:
                connection.execute(update(LOOKALIKES).where(LOOKALIKES.c.domain == candidate.domain).values(**values))
            if seen.status == REGISTERED:
                _add_indicator(connection, candidate, seen, source, now)
            if change is not None:
                finding = Finding(candidate, seen, change, values.get("first_seen") or now)
                _add_event(connection, {**finding.to_dict(), "source": source}, now)
                findings.append(finding)
    return findings


def _priority(previous: Mapping[str, Any]) -> Callable[[Candidate], tuple[int, float, str]]:
    def key(candidate: Candidate) -> tuple[int, float, str]:
        old = previous.get(candidate.domain)
        if old is None or old.last_checked is None:
            return 0, 0.0, candidate.domain
        return (1 if old.status == UNKNOWN else 2), old.last_checked.timestamp(), candidate.domain
    return key


# --- runs -------------------------------------------------------------------------------------------------

async def run_watch(engine: Engine, org: OrgConfig, resolver: AsyncResolver, *,
                    extra: Iterable[ProtectedDomain] = (), max_queries: int | None = None, rate: float | None = None,
                    concurrency: int | None = None, notify: bool = True, relay: str | None = None,
                    now: Callable[[], datetime] = _utcnow) -> WatchReport:
    """One run of the watch over org.toml's own and partner domains and ``extra``; see the module docstring.

    ``max_queries``, ``rate`` and ``concurrency`` override ``[watch]``. With ``notify``, partners are then told
    of lookalikes of the own domains (``notify.notify_partners``) when ``[notify]`` or ``relay`` says how."""
    settings = org.watch
    protected = [*protected_for_org(org), *extra]
    report = WatchReport()
    if not protected:
        return report
    candidates = candidates_for(protected, settings)
    with store_errors("read the lookalike watch from", engine.url), engine.connect() as connection:
        previous = _previous(connection)
    known = {c.domain for c in candidates}
    for row in previous.values():  # lookalikes seen in mail are looked up too
        name = split_host(row.domain)
        if row.mail_seen_at is not None and row.domain not in known and name is not None:
            candidates.append(Candidate(row.domain, row.protected_domain, row.technique, row.score, row.kind,
                                        name.suffix))
    report.candidates = len(candidates)
    candidates.sort(key=_priority(previous))
    prober = Prober(resolver, rate=rate or settings.rate, concurrency=concurrency or settings.concurrency,
                    max_queries=max_queries or settings.max_queries, dnsbl=org.auth.dnsbl)
    seen = await asyncio.gather(*(prober.observe(c) for c in candidates))
    observed = [(c, s) for c, s in zip(candidates, seen, strict=True) if s is not None]
    report.checked = len(observed)
    report.queries = prober.queries
    report.statuses = Counter(s.status for _, s in observed)
    report.new = await asyncio.to_thread(save_observations, engine, observed, now())
    if notify:
        from mailwarden.domains.notify import notify_configured, notify_partners

        if notify_configured(org.notify, relay):
            report.notifications = await notify_partners(engine, org, relay=relay, now=now)
    return report


async def watch_periodically(engine: Engine, org: OrgConfig, resolver: AsyncResolver, stop: asyncio.Event, *,
                             extra: Callable[[], Iterable[ProtectedDomain]] = tuple,
                             on_report: Callable[[WatchReport], None] | None = None) -> None:
    """``run_watch`` every ``[watch] interval`` seconds until ``stop`` is set (for ``serve``). A run that fails
    is logged and the next one tries again; ``extra`` gives the store's protected domains at each run."""
    import logging

    log = logging.getLogger("mailwarden.watch")
    while not stop.is_set():
        try:
            report = await run_watch(engine, org, resolver, extra=extra())
            log.info("lookalike watch: %s", report.summary())
            if on_report is not None:
                on_report(report)
        except Exception:  # a failed run must not end the gateway; the next one retries
            log.exception("lookalike watch run failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=org.watch.interval)


# --- lookalikes seen in mail ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SeenLookalike:
    """A lookalike a scan found in a message: the registrable domain, what it imitates, how, and whose."""

    domain: str
    lookalike_of: str
    technique: str
    score: int
    kind: str


def lookalikes_in(result: ScanResult) -> list[SeenLookalike]:
    """The lookalikes a scan's signals name (``sender.lookalike_*``, ``url.lookalike_*``, ...), once each."""
    found: dict[str, SeenLookalike] = {}
    for signal in result.signals:
        evidence = signal.evidence
        if "imitated" not in evidence or "domain" not in evidence:
            continue
        domain = registrable_domain(str(evidence["domain"]))
        found.setdefault(domain, SeenLookalike(domain, str(evidence["imitated"]), str(evidence.get("technique", "")),
                                               int(evidence.get("confidence", 0)), str(evidence.get("whose", ""))))
    return list(found.values())


async def record_seen_in_mail(engine: Engine, org: OrgConfig, seen: Iterable[SeenLookalike], *, notify: bool = True,
                              relay: str | None = None, now: Callable[[], datetime] = _utcnow
                              ) -> tuple[list[Finding], list[Notification]]:
    """Keep lookalikes found in mail with the watch's state (new ones become events and indicators), then tell
    partners about those of the own domains. For the gateway after a scan: ``lookalikes_in(result)``."""
    when = now()
    items = [s for s in seen if s.domain]
    if not items:
        return [], []

    def store() -> list[Finding]:
        findings = []
        with store_errors("save a lookalike seen in mail to", engine.url), begin_write(engine) as connection:
            previous = _previous(connection, [s.domain for s in items])
            for item in items:
                name = split_host(item.domain)
                candidate = Candidate(item.domain, item.lookalike_of, item.technique, item.score, item.kind,
                                      name.suffix if name else "")
                observation = Observation(item.domain, SEEN)
                old = previous.get(item.domain)
                if old is None:
                    statement = _insert(connection, LOOKALIKES).values(
                        domain=item.domain, protected_domain=item.lookalike_of, kind=item.kind,
                        technique=item.technique, score=item.score, status=SEEN, first_seen=when, last_seen=when,
                        mail_seen_at=when, reported_at=when, records={}, dnsbl=[])
                    if not _inserted(connection, statement):
                        continue
                else:
                    connection.execute(update(LOOKALIKES).where(LOOKALIKES.c.domain == item.domain).values(
                        mail_seen_at=when, last_seen=when, first_seen=old.first_seen or when,
                        reported_at=old.reported_at or when))
                _add_indicator(connection, candidate, observation, SOURCE_MAIL, when)
                if old is None or old.mail_seen_at is None:
                    finding = Finding(candidate, observation, "seen_in_mail", old.first_seen if old is not None
                                      and old.first_seen else when)
                    _add_event(connection, {**finding.to_dict(), "source": SOURCE_MAIL}, when)
                    findings.append(finding)
        return findings

    findings = await asyncio.to_thread(store)
    notifications: list[Notification] = []
    if notify and any(item.kind == "own" for item in items):
        from mailwarden.domains.notify import notify_configured, notify_partners

        if notify_configured(org.notify, relay):
            notifications = await notify_partners(engine, org, lookalikes=[i.domain for i in items if i.kind == "own"],
                                                  relay=relay, now=lambda: when)
    return findings, notifications


def stored_lookalikes(engine: Engine, status: str | None = None) -> list[dict[str, Any]]:
    """The watch's state, newest first (for listings and tests)."""
    query = select(LOOKALIKES).order_by(LOOKALIKES.c.id)
    if status is not None:
        query = query.where(LOOKALIKES.c.status == status)
    with store_errors("read the lookalike watch from", engine.url), engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
