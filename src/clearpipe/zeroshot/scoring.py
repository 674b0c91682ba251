"""Stage 3 of zero-shot: per-label numbers -> probabilities -> the ranked answer.

Two sources of numbers, one answer shape (transformers' `{"sequence", "labels", "scores"}`,
labels sorted by score):

* a sentence encoder's cosine similarities between a text and each label prompt
  (`Similarity`): single-label, a softmax of similarity / `temperature`; `multi_label`, each
  label on its own, sigmoid(`scale` x (similarity - `threshold`)). The defaults were measured
  on held-out rows of SST-2 and AG News (docs/ZERO_SHOT.md says how);
* an NLI model's logits for every (text, hypothesis) pair (`nli_scores`), turned into
  probabilities exactly as transformers' ZeroShotClassificationPipeline does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from clearpipe.zeroshot.labels import Label

DEFAULT_TEMPLATE = "The topic is {}."
"""The sentence encoder's prompt: of 13 templates, the best mean accuracy on held-out rows of
SST-2 and AG News, with label names and with descriptions (docs/ZERO_SHOT.md)."""
NLI_TEMPLATE = "This example is {}."
"""An NLI model's hypothesis, transformers' default, for parity with its pipeline."""


class ZeroShotOutput(TypedDict):
    """One text's answer: its labels from most to least likely, and their scores."""

    sequence: str
    labels: list[str]
    scores: list[float]


@dataclass(frozen=True)
class Similarity:
    """How cosine similarities become probabilities (see the module docstring).

    >>> Similarity().probabilities(np.array([[0.30, 0.20]]), multi_label=False).round(2)
    array([[0.92, 0.08]])
    """

    temperature: float = 0.053
    scale: float = 8.6
    threshold: float = 0.18
    # Descriptions spread the similarities wider than bare names, so one temperature left them
    # over-confident (ECE 6 to 9%): label sets with a description get their own.
    described_temperature: float = 0.031

    def probabilities(
        self, similarities: np.ndarray, multi_label: bool, described: bool = False
    ) -> np.ndarray:
        """(texts, labels) similarities -> (texts, labels) probabilities, float64; `described`:
        some label carries a description."""
        sims = np.asarray(similarities, dtype=np.float64)
        if multi_label:
            return _sigmoid(self.scale * (sims - self.threshold))
        return _softmax(sims / (self.described_temperature if described else self.temperature))


MEASURED: dict[str, Similarity] = {
    "minilm-l6": Similarity(),
    "mpnet-base": Similarity(temperature=0.046, scale=9.4, threshold=0.19, described_temperature=0.023),
}
"""Each named base's scoring, fitted on the same held-out rows by `benchmarks/zero_shot.py --part
select --model NAME` (docs/ZERO_SHOT.md). Both chose the same template; mpnet-base's similarities
spread wider, so MiniLM's temperatures left its AG News scores 8 points of ECE off. Any other
encoder gets MiniLM's (the defaults)."""


def nli_scores(logits: np.ndarray, entailment: int, contradiction: int, multi_label: bool) -> np.ndarray:
    """An NLI model's logits (texts, labels, classes) -> (texts, labels) probabilities.

    As transformers: multi-label (or one label), each label's softmax of entailment against
    contradiction; single-label, the softmax of the entailment logits over the labels.

    >>> nli_scores(np.zeros((1, 2, 3)), entailment=2, contradiction=0, multi_label=False)
    array([[0.5, 0.5]])
    """
    logits = np.asarray(logits, dtype=np.float64)
    if multi_label or logits.shape[1] == 1:
        return _softmax(logits[..., [contradiction, entailment]])[..., 1]
    return _softmax(logits[..., entailment])


@dataclass(frozen=True)
class ZeroShotPredictions:
    """Scores of every text for every candidate label, in the labels' given order.

    `scores` is (texts, labels); `to_output` ranks them into the answer shape.
    """

    sequences: list[str]
    labels: list[Label]
    scores: np.ndarray
    multi_label: bool

    def best(self) -> list[str]:
        """The most likely label of each text."""
        return [self.labels[int(i)].name for i in np.argmax(self.scores, axis=1)]

    def to_output(self) -> list[ZeroShotOutput]:
        """One `{"sequence", "labels", "scores"}` per text, labels from the highest score down
        (ties ordered as transformers orders them).

        >>> predictions.to_output()[0]["labels"]  # doctest: +SKIP
        ['Sports', 'World', 'Business', 'Sci/Tech']
        """
        return [
            _ranked(text, self.labels, row) for text, row in zip(self.sequences, self.scores, strict=True)
        ]


def _ranked(text: str, labels: Sequence[Label], row: np.ndarray) -> ZeroShotOutput:
    order = np.argsort(row)[::-1]  # transformers' `reversed(scores.argsort())`
    return {
        "sequence": text,
        "labels": [labels[int(i)].name for i in order],
        "scores": [float(row[i]) for i in order],
    }


def _softmax(z: np.ndarray) -> np.ndarray:
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))
