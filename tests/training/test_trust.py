"""Reliability bins, the risk-coverage curve, the smallest min_score for a target accuracy, and the
Brier score, on hand-checked numbers."""

import numpy as np
import pytest

from clearpipe.training.metrics import (
    brier_score,
    calibration_figures,
    evaluate_scores,
    expected_calibration_error,
)
from clearpipe.training.trust import assess, assess_scores

CONFIDENCE = np.array([0.95, 0.9, 0.9, 0.8, 0.7, 0.6])
CORRECT = np.array([True, True, False, True, True, False])


def test_the_curve_cuts_only_where_the_score_changes():
    curve = assess(CONFIDENCE, CORRECT).curve
    # The two 0.9 rows are kept or dropped together.
    assert [(p.min_score, p.rows) for p in curve] == [(0.95, 1), (0.9, 3), (0.8, 4), (0.7, 5), (0.6, 6)]
    assert [p.accuracy for p in curve] == pytest.approx([1, 2 / 3, 3 / 4, 4 / 5, 4 / 6])
    assert curve[-1].coverage == 1.0


def test_the_smallest_min_score_reaching_a_target_keeps_the_most_rows():
    trust = assess(CONFIDENCE, CORRECT)
    assert trust.min_score_for(0.8).min_score == 0.7  # 4 of 5 kept rows right
    assert trust.min_score_for(0.99).min_score == 0.95
    assert trust.min_score_for(0.5).coverage == 1.0
    never = assess(np.array([0.9, 0.8]), np.array([False, True]))
    assert never.min_score_for(0.99) is None


def test_accuracy_at_a_coverage_keeps_at_least_that_share():
    trust = assess(CONFIDENCE, CORRECT)
    assert trust.at_coverage(0.8).rows == 5 and trust.at_coverage(0.8).accuracy == 0.8
    assert trust.at_coverage(0.5).rows == 3  # the tie at 0.9 brings the third row in


def test_reliability_bins_are_those_of_the_ece():
    trust = assess(CONFIDENCE, CORRECT, bins=5)
    assert [(b.lower, b.upper, b.rows) for b in trust.reliability] == [
        (0.4, 0.6, 1),
        (0.6, 0.8, 2),
        (0.8, 1.0, 3),
    ]
    gap = sum(b.rows * abs(b.confidence - b.accuracy) for b in trust.reliability) / len(CONFIDENCE)
    assert gap == pytest.approx(expected_calibration_error(CONFIDENCE, CORRECT, bins=5), abs=1e-6)
    d = trust.to_dict(points=3)
    assert set(d) == {"rows", "reliability", "accuracy_at_coverage", "risk_coverage"}
    assert list(d["accuracy_at_coverage"]) == ["90%", "80%"] and len(d["risk_coverage"]) == 3


def test_assess_scores_uses_the_best_label():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    trust = assess_scores(probs, np.array([0, 0, 0]))
    assert [p.min_score for p in trust.curve] == [0.9, 0.7, 0.6]
    assert [p.accuracy for p in trust.curve] == pytest.approx([1, 0.5, 2 / 3])


def test_brier_score_follows_scikit_learn():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    y = np.array([0, 1, 1])
    assert brier_score(probs, y) == pytest.approx(np.mean((probs[:, 1] - y) ** 2), abs=1e-6)
    three = np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3]])
    assert brier_score(three, np.array([0, 2])) == pytest.approx(
        ((three - np.eye(3)[[0, 2]]) ** 2).sum(1).mean()
    )
    multi = np.array([[1, 0], [0, 1]])
    assert brier_score(np.array([[0.9, 0.2], [0.1, 0.6]]), multi) == pytest.approx(
        (0.01 + 0.04 + 0.01 + 0.16) / 4
    )
    figures = calibration_figures(probs, y)
    assert set(figures) == {"ece", "log_loss", "brier"} and figures["brier"] == brier_score(probs, y)
    assert evaluate_scores(probs, y, ["a", "b"]).brier == brier_score(probs, y)
