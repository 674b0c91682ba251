"""Evaluation metrics, checked against hand-computed values and scikit-learn as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from clearpipe.training.metrics import evaluate_scores, expected_calibration_error, tune_thresholds


def test_binary_metrics_by_hand():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = [0, 1, 1, 0]  # rows 2 and 3 are wrong
    ev = evaluate_scores(probs, y, ["neg", "pos"], texts=["a", "b", "c", "d"], rows=[1, 2, 3, 4], n_errors=5)
    assert ev.accuracy == 0.5
    assert ev.confusion == [[1, 1], [1, 1]]
    assert ev.per_class["pos"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert ev.roc_auc == pytest.approx(roc_auc_score(y, probs[:, 1]))
    assert ev.log_loss == pytest.approx(log_loss(y, probs))
    # The most confident mistake first: row 4 (0.7 for "pos") before row 3 (0.6 for "neg").
    assert [(e["row"], e["predicted"], e["label"]) for e in ev.errors] == [
        (4, "pos", "neg"),
        (3, "neg", "pos"),
    ]


def test_multiclass_matches_sklearn():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 4))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 4, size=200)
    ev = evaluate_scores(probs, y, list("abcd"))
    pred = probs.argmax(axis=1)
    assert ev.macro_f1 == pytest.approx(f1_score(y, pred, average="macro"))
    assert ev.micro["f1"] == pytest.approx(ev.accuracy)  # single-label micro-F1 is accuracy
    assert ev.roc_auc == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    assert sum(map(sum, ev.confusion)) == 200


def test_roc_auc_is_none_with_one_class_present():
    ev = evaluate_scores(np.array([[0.8, 0.2], [0.6, 0.4]]), [0, 0], ["a", "b"])
    assert ev.roc_auc is None


def test_expected_calibration_error():
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0.0
    # Two bins: 0.9-confident half all right (gap 0.1), 0.55-confident half all wrong (gap 0.55).
    conf = np.array([0.9, 0.9, 0.55, 0.55])
    correct = np.array([True, True, False, False])
    assert expected_calibration_error(conf, correct) == pytest.approx(0.5 * 0.1 + 0.5 * 0.55)


def test_thresholds_are_tuned_per_label():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=(300, 2))
    # Label 0 is separable at 0.3; label 1 at 0.7.
    probs = np.where(y == 1, [0.35, 0.75], [0.25, 0.65]) + rng.uniform(-0.02, 0.02, size=(300, 2))
    thresholds = tune_thresholds(probs, y)
    assert thresholds[0] == pytest.approx(0.3)
    assert thresholds[1] == pytest.approx(0.7)
    ev = evaluate_scores(probs, y, ["x", "y"], thresholds=thresholds)
    assert ev.multi_label and ev.accuracy == 1.0
    assert ev.thresholds == {"x": pytest.approx(0.3), "y": pytest.approx(0.7)}
    assert set(ev.confusion) == {"x", "y"}
