"""Signals, verdicts and the scoring that turns one into the other.

A signal is one observation with its evidence (rspamd's symbol + options). Its score comes from the
weights in ``scoring.toml`` (packaged default, overridable by the operator's ``[scoring]`` table), times
a factor the analyzer may set for graded evidence. The verdict is the sum of scores against thresholds.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any

from mailwarden.errors import ConfigError

MAX_SCORE = 100


class Verdict(StrEnum):
    DELIVER = "deliver"
    WARN = "warn"
    QUARANTINE = "quarantine"
    REJECT = "reject"


@dataclass(frozen=True)
class Signal:
    id: str
    score: int
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "detail": self.detail, "evidence": dict(self.evidence)}


@dataclass(frozen=True)
class Thresholds:
    warn: int = 30
    quarantine: int = 60
    reject: int = 90

    def verdict_for(self, score: int) -> Verdict:
        if score >= self.reject:
            return Verdict.REJECT
        if score >= self.quarantine:
            return Verdict.QUARANTINE
        if score >= self.warn:
            return Verdict.WARN
        return Verdict.DELIVER


@dataclass(frozen=True)
class Scoring:
    """Weights per signal id, thresholds per verdict, analyzer switches."""

    weights: Mapping[str, int]
    thresholds: Thresholds
    disabled_analyzers: frozenset[str] = frozenset()

    def make(self, signal_id: str, detail: str, evidence: Mapping[str, Any] | None = None,
             factor: float = 1.0) -> Signal:
        """Build a signal with its configured weight (times ``factor`` for graded evidence)."""
        try:
            weight = self.weights[signal_id]
        except KeyError:
            raise ConfigError(f"signal '{signal_id}' has no weight in the scoring configuration") from None
        return Signal(signal_id, round(weight * factor), detail, dict(evidence or {}))

    def total(self, signals: Iterable[Signal]) -> int:
        return max(0, min(MAX_SCORE, sum(s.score for s in signals)))


def _default_document() -> dict[str, Any]:
    text = resources.files("mailwarden").joinpath("scoring.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def load_scoring(overrides: Mapping[str, Any] | None = None) -> Scoring:
    """The packaged scoring, with an operator's ``[scoring]`` table merged over it."""
    doc = _default_document()
    overrides = overrides or {}
    weights: dict[str, int] = dict(doc["weights"])
    for key, value in dict(overrides.get("weights", {})).items():
        if key not in weights:
            raise ConfigError(f"[scoring.weights]: unknown signal id '{key}'")
        if not isinstance(value, int | float):
            raise ConfigError(f"[scoring.weights]: '{key}' must be a number")
        weights[key] = int(value)
    raw_thresholds = {**doc["thresholds"], **dict(overrides.get("thresholds", {}))}
    try:
        thresholds = Thresholds(**{k: int(v) for k, v in raw_thresholds.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[scoring.thresholds]: {exc}") from exc
    if not thresholds.warn <= thresholds.quarantine <= thresholds.reject:
        raise ConfigError("[scoring.thresholds]: need warn <= quarantine <= reject")
    disabled = overrides.get("disabled_analyzers", doc.get("disabled_analyzers", []))
    if not isinstance(disabled, list):
        raise ConfigError("[scoring]: disabled_analyzers must be a list of analyzer names")
    return Scoring(weights=weights, thresholds=thresholds, disabled_analyzers=frozenset(disabled))
