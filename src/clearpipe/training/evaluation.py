"""Score a `Classifier` on a labelled split: the one path used by `clearpipe evaluate` and by
`clearpipe train` for its final validation and test figures.

Predictions come from `Classifier.predict_items` (the same engine as `clearpipe classify`), so
the figures describe exactly what users get.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import PretrainedConfig

from clearpipe.classifier import Classifier
from clearpipe.training.data import DataOptions, Split, SplitReport, read_evaluation_data
from clearpipe.training.metrics import Evaluation, evaluate_scores

THRESHOLDS_KEY = "label_thresholds"
"""config.json key holding the per-label decision thresholds of a multi-label model."""


def is_multi_label(config: PretrainedConfig) -> bool:
    return config.problem_type == "multi_label_classification"


def saved_thresholds(config: PretrainedConfig, labels: list[str]) -> np.ndarray | None:
    """The per-label thresholds saved by `clearpipe train` in config.json, in label order (or None).

    >>> saved_thresholds(clf.model.config, clf.labels)  # doctest: +SKIP
    array([0.35, 0.6 , 0.5 ])
    """
    saved = getattr(config, THRESHOLDS_KEY, None)
    if not is_multi_label(config):
        return None
    if not saved:
        return np.full(len(labels), 0.5)
    return np.asarray([float(saved.get(name, 0.5)) for name in labels])


def evaluate_split(classifier: Classifier, split: Split, n_errors: int = 0) -> Evaluation:
    """Classify every row of `split` with `classifier` and score the probabilities.

    >>> evaluate_split(clearpipe.load("out"), data.test, n_errors=5).accuracy  # doctest: +SKIP
    0.912
    """
    config = classifier.model.config
    scores = classifier.predict_items(split.items).scores  # (N, L)
    labels: list | np.ndarray = split.labels
    if is_multi_label(config):
        labels = np.zeros(scores.shape, dtype=int)
        for i, ids in enumerate(split.labels):
            labels[i, ids] = 1
    return evaluate_scores(
        scores,
        labels,
        classifier.labels,
        thresholds=saved_thresholds(config, classifier.labels),
        texts=split.items,
        rows=split.rows,
        n_errors=n_errors,
    )


def evaluate_file(
    classifier: Classifier, path: str | Path, options: DataOptions | None = None, n_errors: int = 0
) -> tuple[Evaluation, SplitReport]:
    """Read a labelled file (columns inferred as for training) and evaluate `classifier` on it."""
    multi = is_multi_label(classifier.model.config)
    split, report = read_evaluation_data(path, classifier.labels, multi, options)
    return evaluate_split(classifier, split, n_errors), report
