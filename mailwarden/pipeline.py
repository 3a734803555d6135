"""One scan for every entry point: analyzers -> signals -> verdict, with the evidence.

    scan(parse(raw), context) -> ScanResult

Analyzers are modules with ``NAME``, ``SIGNALS`` (the ids they may emit) and
``analyze(message, context) -> list[Signal]``. An analyzer that fails is reported as a signal, never
as a crash, and the others still run.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mailwarden.analyzers import ANALYZERS, Analyzer
from mailwarden.config import OrgConfig
from mailwarden.detection import DetectionData, load_detection_data
from mailwarden.intel import IntelLists
from mailwarden.message import Message
from mailwarden.profiles import Profiles
from mailwarden.resolver import Resolver, StaticResolver
from mailwarden.signals import Scoring, Signal, Verdict, load_scoring

if TYPE_CHECKING:
    from mailwarden.auth.results import AuthVerdict
    from mailwarden.domains import DomainIndex, ProtectedDomain


@dataclass
class Context:
    """Everything an analyzer may consult besides the message itself."""

    org: OrgConfig = field(default_factory=OrgConfig)
    scoring: Scoring = field(default_factory=load_scoring)
    profiles: Profiles = field(default_factory=Profiles)
    intel: IntelLists = field(default_factory=IntelLists)
    resolver: Resolver = field(default_factory=StaticResolver)
    data: DetectionData = field(default_factory=load_detection_data)
    protected: tuple[ProtectedDomain, ...] = ()  # besides org.toml's: partners protected in the store
    auth_verdict: AuthVerdict | None = None  # live authentication already done for this message (the gateway)

    @classmethod
    def for_org(cls, org: OrgConfig, profiles: Profiles | None = None,
                protected: tuple[ProtectedDomain, ...] = ()) -> Context:
        from mailwarden.dns import configured_resolver  # MAILWARDEN_RESOLVER or [dns]; else no DNS at all

        return cls(org=org, scoring=load_scoring(org.scoring), profiles=profiles or Profiles(),
                   resolver=configured_resolver(org.dns), protected=protected)

    def with_auth(self, verdict: AuthVerdict) -> Context:
        """This context for one message whose live authentication is known: the auth analyzer uses the verdict
        instead of evaluating again. A shallow copy: profiles, indexes and caches are shared."""
        one = copy.copy(self)
        one.auth_verdict = verdict
        return one

    def signal(self, signal_id: str, detail: str, factor: float = 1.0, **evidence: Any) -> Signal:
        return self.scoring.make(signal_id, detail, evidence, factor)

    @cached_property
    def domain_index(self) -> DomainIndex:
        """The own and partner domains indexed for lookalike checks, built on first use, once per context."""
        from mailwarden.domains import DomainIndex

        return DomainIndex.for_org(self.org, extra=self.protected)


@dataclass(frozen=True)
class Indicator:
    type: str  # domain | url | ipv4 | ipv6 | email-addr | file-sha256
    value: str
    source: str


@dataclass(frozen=True)
class ScanResult:
    verdict: Verdict
    score: int
    signals: tuple[Signal, ...]
    indicators: tuple[Indicator, ...] = ()

    @property
    def explanation(self) -> str:
        """The signals that decided the verdict, strongest first, in plain words."""
        deciding = [s for s in self.signals if s.score > 0]
        if not deciding:
            return "no suspicious signals"
        return "; ".join(f"{s.detail} (+{s.score})" for s in deciding[:5])

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "score": self.score,
            "signals": [{"id": s.id, "score": s.score, "detail": s.detail} for s in self.signals],
        }


def enabled_analyzers(context: Context) -> list[Analyzer]:
    return [a for a in ANALYZERS if a.NAME not in context.scoring.disabled_analyzers]


def _run(analyzer: Analyzer, message: Message, context: Context) -> list[Signal]:
    try:
        return list(analyzer.analyze(message, context))
    except Exception as exc:  # an analyzer bug must not lose the message or the other verdicts
        return [context.signal("scan.analyzer_failed", f"analyzer {analyzer.NAME} failed: {type(exc).__name__}",
                               analyzer=analyzer.NAME, error=str(exc)[:200])]


def _indicators(message: Message, verdict: Verdict) -> tuple[Indicator, ...]:
    """What a quarantined or rejected message teaches the rest of the stack."""
    if verdict not in (Verdict.QUARANTINE, Verdict.REJECT):
        return ()
    found: dict[tuple[str, str], Indicator] = {}

    def add(kind: str, value: str, source: str) -> None:
        if value:
            found.setdefault((kind, value), Indicator(kind, value, source))

    if message.from_:
        add("email-addr", message.from_.email, "from")
    for url in message.urls:
        add("url", url.url, url.origin)
        add("ipv4" if url.is_ip and ":" not in url.host else "domain", url.host if url.is_ip
            else url.registrable_domain, url.origin)
    for attachment in message.attachments:
        add("file-sha256", attachment.sha256, f"attachment:{attachment.filename}")
    return tuple(found.values())


def scan(message: Message, context: Context) -> ScanResult:
    """Run every enabled analyzer and decide. Deterministic for the same message and context."""
    signals: list[Signal] = []
    for analyzer in enabled_analyzers(context):
        signals.extend(_run(analyzer, message, context))
    signals.sort(key=lambda s: (-s.score, s.id, s.detail))
    score = context.scoring.total(signals)
    verdict = context.scoring.thresholds.verdict_for(score)
    return ScanResult(verdict=verdict, score=score, signals=tuple(signals),
                      indicators=_indicators(message, verdict))


def message_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
