"""Evaluation metrics from probabilities, through scikit-learn.

`evaluate_scores(probs, labels, names)` returns an `Evaluation`: accuracy; precision, recall and F1
per class and macro/micro; the confusion matrix; ROC AUC (one-vs-rest beyond two classes); log loss;
expected calibration error; the Brier score; and the rows of the most confident mistakes. Multi-label data is scored
per label after applying one decision threshold per label (`tune_thresholds` picks them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

ECE_BINS = 15
THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


@dataclass
class Evaluation:
    """Metrics of one model on one labelled set; `to_dict()` is the `--json` / `metrics.json` form."""

    rows: int
    accuracy: float
    macro: dict[str, float]
    micro: dict[str, float]
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]] | dict[str, list[list[int]]]
    roc_auc: float | None
    log_loss: float
    ece: float
    labels: list[str]
    multi_label: bool = False
    thresholds: dict[str, float] | None = None
    errors: list[dict] = field(default_factory=list)
    brier: float | None = None  # scikit-learn's brier_score_loss; per label cell when multi-label
    ece_bins: int = ECE_BINS
    # With a saved temperature applied: it, and the raw softmax's figures (see `calibration_figures`).
    calibration: dict[str, str | float] | None = None
    uncalibrated: dict[str, float] | None = None

    @property
    def macro_f1(self) -> float:
        return self.macro["f1"]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def predictions(probs: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """Predicted label ids (N,) for single-label scores, or a 0/1 matrix (N, L) given thresholds."""
    if thresholds is None:
        return probs.argmax(axis=1)
    return (probs >= thresholds[None, :]).astype(int)


def evaluate_scores(
    probs: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    names: Sequence[str],
    thresholds: np.ndarray | None = None,
    texts: Sequence[object] | None = None,
    rows: Sequence[int] | None = None,
    n_errors: int = 0,
) -> Evaluation:
    """Score probabilities (N, L) against label ids (N,) — or a 0/1 matrix (N, L) when multi-label.

    >>> ev = evaluate_scores(np.array([[0.9, 0.1], [0.2, 0.8]]), [0, 1], ["neg", "pos"])
    >>> ev.accuracy
    1.0
    """
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if y.ndim == 2:
        return _multi_label(probs, y, list(names), thresholds, texts, rows, n_errors)
    return _single_label(probs, y, list(names), texts, rows, n_errors)


def _single_label(probs, y, names, texts, rows, n_errors) -> Evaluation:
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss

    ids = list(range(len(names)))
    pred = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    return Evaluation(
        rows=len(y),
        accuracy=float(accuracy_score(y, pred)),
        macro=_prf(y, pred, ids, "macro"),
        micro=_prf(y, pred, ids, "micro"),
        per_class=_per_class(y, pred, ids, names),
        confusion=confusion_matrix(y, pred, labels=ids).tolist(),
        roc_auc=_roc_auc(probs, y, ids),
        log_loss=float(log_loss(y, _distribution(probs), labels=ids)),
        ece=expected_calibration_error(confidence, pred == y),
        labels=names,
        errors=_confident_errors(pred != y, confidence, pred, y, names, texts, rows, n_errors),
        brier=brier_score(probs, y),
    )


def _multi_label(probs, y, names, thresholds, texts, rows, n_errors) -> Evaluation:
    from sklearn.metrics import accuracy_score, multilabel_confusion_matrix

    thresholds = np.full(len(names), 0.5) if thresholds is None else np.asarray(thresholds)
    pred = predictions(probs, thresholds)
    ids = list(range(len(names)))
    p = _clip(probs)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    decided = np.where(pred == 1, probs, 1 - probs)
    wrong_rows = (pred != y).any(axis=1)
    row_conf = decided.mean(axis=1)
    return Evaluation(
        rows=len(y),
        accuracy=float(accuracy_score(y, pred)),  # exact match of the whole label set
        macro=_prf(y, pred, ids, "macro"),
        micro=_prf(y, pred, ids, "micro"),
        per_class=_per_class(y, pred, ids, names),
        confusion={n: m.tolist() for n, m in zip(names, multilabel_confusion_matrix(y, pred), strict=True)},
        roc_auc=_roc_auc_multi(probs, y),
        log_loss=float(bce),
        ece=expected_calibration_error(decided.ravel(), (pred == y).ravel()),
        labels=names,
        multi_label=True,
        thresholds={n: float(t) for n, t in zip(names, thresholds, strict=True)},
        errors=_confident_errors(wrong_rows, row_conf, pred, y, names, texts, rows, n_errors),
        brier=brier_score(probs, y),
    )


def brier_score(probs: np.ndarray, y: np.ndarray) -> float:
    """scikit-learn's Brier score: of the positive class for two classes, summed over classes for
    more, and the mean over label cells for a multi-label 0/1 matrix `y`.

    >>> brier_score(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]))
    0.025
    """
    from sklearn.metrics import brier_score_loss

    if y.ndim == 2:
        return round(float(((probs - y) ** 2).mean()), 6)
    return round(float(brier_score_loss(y, probs, labels=list(range(probs.shape[1])))), 6)


def calibration_figures(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """ECE, log loss and Brier score of single-label probabilities (N, L) against label ids (N,).

    >>> calibration_figures(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]))["ece"]
    0.15
    """
    from sklearn.metrics import log_loss

    pred = probs.argmax(axis=1)
    return {
        "ece": expected_calibration_error(probs.max(axis=1), pred == y),
        "log_loss": float(log_loss(y, _distribution(probs), labels=list(range(probs.shape[1])))),
        "brier": brier_score(probs, y),
    }


def _prf(y, pred, ids, average: str) -> dict[str, float]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=ids, average=average, zero_division=0)
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


def _per_class(y, pred, ids, names) -> dict[str, dict[str, float]]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y, pred, labels=ids, zero_division=0)
    return {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(names)
    }


def _roc_auc(probs, y, ids) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return None  # undefined with one class present
    if len(ids) == 2:
        return float(roc_auc_score(y, probs[:, 1]))
    present = np.unique(y)
    if len(present) < len(ids):
        return None  # one-vs-rest needs every class in the data
    return float(roc_auc_score(y, probs, multi_class="ovr", labels=ids))


def _roc_auc_multi(probs, y) -> float | None:
    from sklearn.metrics import roc_auc_score

    usable = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    if not usable:
        return None
    return float(np.mean([roc_auc_score(y[:, j], probs[:, j]) for j in usable]))


def _clip(probs: np.ndarray) -> np.ndarray:
    return np.clip(probs, 1e-7, 1 - 1e-7)


def _distribution(probs: np.ndarray) -> np.ndarray:
    """Softmax rows clipped away from 0 and summing to 1 again, in float64: clipping float32 rows
    alone left sums off by more than scikit-learn's log_loss tolerates without a warning."""
    clipped = np.clip(probs.astype(np.float64), 1e-7, 1.0)
    return clipped / clipped.sum(axis=1, keepdims=True)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted by size.

    >>> expected_calibration_error(np.array([0.9, 0.9]), np.array([True, False]))
    0.4
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return round(float(total), 6)


def _confident_errors(wrong, confidence, pred, y, names, texts, rows, n) -> list[dict]:
    if n <= 0:
        return []
    order = [i for i in np.argsort(-confidence, kind="stable") if wrong[i]][:n]
    return [
        {
            "row": int(rows[i]) if rows is not None else int(i) + 1,
            "text": texts[i] if texts is not None else None,
            "label": _name(y[i], names),
            "predicted": _name(pred[i], names),
            "confidence": round(float(confidence[i]), 4),
        }
        for i in order
    ]


def _name(value, names):
    if np.ndim(value) == 0:
        return names[int(value)]
    return [names[j] for j in np.flatnonzero(value)]


def tune_thresholds(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One threshold per label, the one on a 0.05 grid that maximizes that label's F1 on (probs, y).

    Ties go to the threshold nearest 0.5, so that labels without evidence keep the neutral choice.
    """
    from sklearn.metrics import f1_score

    best = np.full(y.shape[1], 0.5)
    for j in range(y.shape[1]):
        scores = [
            (f1_score(y[:, j], probs[:, j] >= t, zero_division=0), -abs(t - 0.5), t) for t in THRESHOLD_GRID
        ]
        best[j] = max(scores)[2]
    return best


def selection_metrics(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The per-epoch validation metrics of the training table: accuracy and macro-F1."""
    from sklearn.metrics import accuracy_score, f1_score

    pred = predictions(probs, np.full(probs.shape[1], 0.5) if y.ndim == 2 else None)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
    }
