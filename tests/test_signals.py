"""Scoring: weights and thresholds are data, overridable by the operator, and the verdict is deterministic."""

import pytest

from mailwarden.analyzers import ANALYZERS
from mailwarden.errors import ConfigError
from mailwarden.signals import Signal, Thresholds, Verdict, load_scoring


def test_every_declared_signal_has_a_weight_and_every_weight_a_signal() -> None:
    declared = {signal_id for analyzer in ANALYZERS for signal_id in analyzer.SIGNALS} | {"scan.analyzer_failed"}
    assert declared == set(load_scoring().weights)


def test_signal_ids_are_dotted_and_name_their_analyzer_family() -> None:
    for analyzer in ANALYZERS:
        for signal_id in analyzer.SIGNALS:
            family, _, name = signal_id.partition(".")
            assert family and name and signal_id == signal_id.lower()


@pytest.mark.parametrize(("score", "verdict"), [(0, Verdict.DELIVER), (29, Verdict.DELIVER), (30, Verdict.WARN),
                                                 (60, Verdict.QUARANTINE), (95, Verdict.REJECT)])
def test_thresholds_map_scores_to_verdicts(score: int, verdict: Verdict) -> None:
    assert Thresholds(warn=30, quarantine=60, reject=90).verdict_for(score) is verdict


def test_operator_overrides_weights_thresholds_and_switches() -> None:
    scoring = load_scoring({"weights": {"url.shortener": 1}, "thresholds": {"warn": 10},
                            "disabled_analyzers": ["content"]})
    assert scoring.weights["url.shortener"] == 1
    assert scoring.thresholds.warn == 10
    assert "content" in scoring.disabled_analyzers
    assert scoring.make("url.shortener", "x").score == 1


def test_graded_evidence_scales_the_weight() -> None:
    scoring = load_scoring({"weights": {"url.shortener": 20}})
    assert scoring.make("url.shortener", "x", factor=0.5).score == 10


@pytest.mark.parametrize("overrides", [
    {"weights": {"no.such_signal": 5}},
    {"weights": {"url.shortener": "high"}},
    {"thresholds": {"warn": 80, "quarantine": 50}},
    {"disabled_analyzers": "content"},
])
def test_bad_overrides_fail_with_a_clear_error(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_scoring(overrides)


def test_total_is_clipped_to_0_100() -> None:
    scoring = load_scoring()
    assert scoring.total([Signal("a", 80, ""), Signal("b", 70, "")]) == 100
    assert scoring.total([Signal("a", -5, "")]) == 0
