"""Score a `Classifier` on a labelled split: the one path used by `clearpipe evaluate` and by
`clearpipe train` for its final validation and test figures.

Predictions come from the `Classifier`'s own stages (the same engine as `clearpipe classify`), so
the figures describe exactly what users get; with a saved temperature, the raw softmax's
calibration figures come from the same logits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clearpipe.classifier import Classifier
from clearpipe.postprocess import THRESHOLDS_KEY, Temperature, is_multi_label, saved_thresholds
from clearpipe.training.data import DataOptions, Split, SplitReport, read_evaluation_data
from clearpipe.training.metrics import Evaluation, calibration_figures, evaluate_scores

__all__ = [
    "THRESHOLDS_KEY",
    "Scored",
    "evaluate_file",
    "evaluate_split",
    "is_multi_label",
    "saved_thresholds",
]


@dataclass(frozen=True)
class Scored:
    """A labelled split's scores: `scores` (N, L) as users get them, `raw` the same without the
    saved temperature (None when none was applied), `y` label ids (N,) or a 0/1 matrix (N, L)."""

    scores: np.ndarray
    raw: np.ndarray | None
    y: np.ndarray
    temperature: Temperature | None


def score_split(classifier: Classifier, split: Split) -> Scored:
    """Classify every row of `split`: the scores, and the raw ones when a temperature applies.

    >>> score_split(clearpipe.load("out"), data.test).scores.shape  # doctest: +SKIP
    (872, 2)
    """
    if classifier.settings.long_text == "chunk":  # windows are aggregated after the activation
        predictions = classifier.predict_items(split.items)
        raw = None
    else:
        logits = classifier.logits(classifier.tokenize(split.items))  # (N, L)
        predictions = classifier.postprocess(logits)
        raw = None if predictions.temperature is None else classifier.postprocess(logits, calibrated=False)
    scores = predictions.scores
    if is_multi_label(classifier.model.config):  # label ids per row -> a 0/1 matrix (N, L)
        y = np.zeros(scores.shape, dtype=int)
        for i, ids in enumerate(split.labels):
            y[i, ids] = 1
    else:
        y = np.asarray(split.labels)
    return Scored(scores, None if raw is None else raw.scores, y, predictions.temperature)


def evaluate_split(classifier: Classifier, split: Split, n_errors: int = 0) -> Evaluation:
    """Classify every row of `split` with `classifier` and score the probabilities.

    >>> evaluate_split(clearpipe.load("out"), data.test, n_errors=5).accuracy  # doctest: +SKIP
    0.912
    """
    return evaluate_scored(classifier, split, score_split(classifier, split), n_errors)


def evaluate_scored(classifier: Classifier, split: Split, scored: Scored, n_errors: int = 0) -> Evaluation:
    """The metrics of already scored rows of `split` (see `score_split`)."""
    evaluation = evaluate_scores(
        scored.scores,
        scored.y,
        classifier.labels,
        thresholds=saved_thresholds(classifier.model.config, classifier.labels),
        texts=split.items,
        rows=split.rows,
        n_errors=n_errors,
    )
    if scored.raw is None:
        return evaluation
    return dataclasses.replace(
        evaluation,
        calibration=scored.temperature.to_dict(),
        uncalibrated=calibration_figures(scored.raw, scored.y),
    )


def read_file(
    classifier: Classifier, path: str | Path, options: DataOptions | None = None
) -> tuple[Split, SplitReport]:
    """Read a labelled file for `classifier` (columns inferred as for training)."""
    multi = is_multi_label(classifier.model.config)
    return read_evaluation_data(path, classifier.labels, multi, options)


def evaluate_file(
    classifier: Classifier, path: str | Path, options: DataOptions | None = None, n_errors: int = 0
) -> tuple[Evaluation, SplitReport]:
    """Read a labelled file (columns inferred as for training) and evaluate `classifier` on it."""
    split, report = read_file(classifier, path, options)
    return evaluate_split(classifier, split, n_errors), report
