"""A zero-shot model with its candidate labels fixed, in the shape bulk prediction drives.

`clearpipe predict --labels` classifies a whole table into one label set. `FixedLabels` holds
the zero-shot model and that set, checked once, and answers `predict_items` with the
`clearpipe.postprocess.Predictions` every classifier returns, so `bulk.local` writes its label,
score, `--top-k` and multi-label `labels` columns exactly as it does for a trained classifier:
single-label scores are a softmax over the labels, multi-label ones each label's own
probability, which "applies" from 0.5 (`MULTI_LABEL_THRESHOLD`, the zero-shot call's own
reading). `record` is what a run's manifest keeps, so `--resume` refuses other labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from clearpipe.errors import InputError
from clearpipe.inputs import TextInput
from clearpipe.postprocess import Activation, Predictions
from clearpipe.zeroshot.classifier import ZeroShotModel, check_count
from clearpipe.zeroshot.labels import CandidateLabels, check_template

MULTI_LABEL_THRESHOLD = 0.5
"""A multi-label zero-shot score from which its label applies (docs/ZERO_SHOT.md's decisions)."""


class FixedLabels:
    """`model` with `candidate_labels` fixed: `predict_items(texts)` -> `Predictions`.

    >>> fixed = FixedLabels(load_zero_shot(), "World,Sports,Sci/Tech=science and technology news")  # doctest: +SKIP
    >>> fixed.predict_items(["The striker scored twice"]).to_output()  # doctest: +SKIP
    [{'label': 'Sports', 'score': 0.91}]
    """

    long_text = "truncate"  # zero-shot truncates; bulk prediction adds no windows column

    def __init__(
        self,
        model: ZeroShotModel,
        candidate_labels: CandidateLabels,
        template: str | None = None,
        multi_label: bool = False,
    ) -> None:
        self.model = model
        self.candidates = model.labels(candidate_labels)
        check_count(self.candidates, multi_label)
        self.template = check_template(template or model.template)
        self.multi_label = multi_label

    @property
    def source(self) -> str:
        return self.model.source

    @property
    def labels(self) -> list[str]:
        """The label names, in the given order (the columns of `predict_items`' scores)."""
        return [label.name for label in self.candidates]

    @property
    def thresholds(self) -> tuple[float, ...] | None:
        """Multi-label: each label applies from `MULTI_LABEL_THRESHOLD`; single-label: None."""
        return (MULTI_LABEL_THRESHOLD,) * len(self.candidates) if self.multi_label else None

    def predict_items(self, items: Sequence[TextInput]) -> Predictions:
        """Scores of every text for every label, as a classifier's `Predictions`."""
        texts = [_text(item, i) for i, item in enumerate(items)]
        tokenized = self.model.tokenize(texts, self.candidates, self.template)
        scores = self.model.scores(tokenized, self.candidates, self.template, self.multi_label)
        thresholds = self.thresholds
        return Predictions(
            scores=np.asarray(scores, dtype=np.float64),
            labels=self.labels,
            activation=Activation.SIGMOID if self.multi_label else Activation.SOFTMAX,
            thresholds=None if thresholds is None else np.array(thresholds),
        )

    def record(self) -> dict[str, Any]:
        """The labels, template and multi-label switch, as a run's manifest records them.

        >>> FixedLabels(model, "a,b=the letter b").record()  # doctest: +SKIP
        {'labels': [['a', None], ['b', 'the letter b']], 'template': 'The topic is {}.', 'multi_label': False}
        """
        return {
            "labels": [[label.name, label.description] for label in self.candidates],
            "template": self.template,
            "multi_label": self.multi_label,
        }


def _text(item: TextInput, index: int) -> str:
    if not isinstance(item, str):
        raise InputError(f"input {index}: zero-shot classifies one text, not a pair")
    return item
