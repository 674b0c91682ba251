"""Stage 3, post-processing: logits -> probabilities -> labels, and clearpipe's output contract.

The output contract, shared by the Python API, the CLI's JSON and the HTTP server:

* without `top_k`: one `{"label": str, "score": float}` per input (the best label);
* with `top_k=k`: a list of the k best `{"label", "score"}` per input, highest score first;
* with `top_k=None`: the same list with every label.

A single input gives a single result; a list gives a list. Nothing else changes the shape.

One addition: with `long_text="chunk"` (see `clearpipe.longtext`) every `{"label", "score"}` also
carries `"windows": n`, the number of `max_length` windows the input was classified in. Truncate
mode (the default) never adds the key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, NotRequired, TypedDict

import numpy as np
from transformers import PretrainedConfig

from clearpipe.errors import InputError


class LabelScore(TypedDict):
    """One label and its score: the unit of clearpipe's output contract."""

    label: str
    score: float
    windows: NotRequired[int]  # only with long_text="chunk"


class _Best(enum.Enum):
    BEST = "best"


BEST: Final = _Best.BEST
"""The default `top_k`: one best `{"label", "score"}` per input instead of a ranked list."""

TopK = int | None | _Best
Output = LabelScore | list[LabelScore]


class Activation(enum.StrEnum):
    """How logits become scores."""

    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"
    NONE = "none"


def default_activation(config: PretrainedConfig) -> Activation:
    """Pick the activation the way transformers' text-classification pipeline does.

    Multi-label checkpoints and single-logit ones get a sigmoid, regression none, the rest softmax.

    >>> default_activation(BertConfig(num_labels=3))
    <Activation.SOFTMAX: 'softmax'>
    """
    if config.problem_type == "regression":
        return Activation.NONE
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return Activation.SIGMOID
    return Activation.SOFTMAX


def activate(logits: np.ndarray, activation: Activation) -> np.ndarray:
    """Apply the activation row-wise to (batch, num_labels) logits.

    >>> activate(np.array([[0.0, 0.0]]), Activation.SOFTMAX)
    array([[0.5, 0.5]])
    """
    if activation is Activation.SOFTMAX:
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    if activation is Activation.SIGMOID:
        return 1.0 / (1.0 + np.exp(-logits))
    return logits


@dataclass(frozen=True)
class Predictions:
    """Scores for a batch: `scores` is (batch, num_labels), columns in the order of `labels`.

    `windows` (batch,) counts the windows each input was classified in; None unless chunked.
    """

    scores: np.ndarray
    labels: list[str]
    activation: Activation
    windows: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def best(self) -> np.ndarray:
        """Index of the best label per row, shape (batch,)."""
        return self.scores.argmax(axis=-1)

    def to_output(self, top_k: TopK = BEST) -> list[Output]:
        """Format every row by the output contract (see the module docstring).

        >>> Predictions(np.array([[0.2, 0.8]]), ["neg", "pos"], Activation.SOFTMAX).to_output()
        [{'label': 'pos', 'score': 0.8}]
        """
        if top_k is BEST:
            return [self._one(i, int(j), float(self.scores[i, j])) for i, j in enumerate(self.best)]
        return [self._ranked(i, row, top_k) for i, row in enumerate(self.scores)]

    def _one(self, row: int, label: int, score: float) -> LabelScore:
        result = LabelScore(label=self.labels[label], score=score)
        if self.windows is not None:
            result["windows"] = int(self.windows[row])
        return result

    def _ranked(self, i: int, row: np.ndarray, top_k: int | None) -> list[LabelScore]:
        ranked = [self._one(i, j, float(s)) for j, s in enumerate(row)]
        # A stable sort keeps label order among equal scores, as transformers does.
        ranked.sort(key=lambda x: x["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]


def postprocess(logits: np.ndarray, labels: list[str], activation: Activation) -> Predictions:
    """Turn (batch, num_labels) logits into scores for each label.

    >>> postprocess(np.array([[0.0, 2.0]]), ["neg", "pos"], Activation.SOFTMAX).to_output()
    [{'label': 'pos', 'score': 0.8807970779778823}]
    """
    if logits.ndim != 2 or logits.shape[1] != len(labels):
        raise ValueError(f"expected logits of shape (batch, {len(labels)}), got {tuple(logits.shape)}")
    scores = activate(logits.astype(np.float64, copy=False), activation)
    return Predictions(scores=scores, labels=labels, activation=activation)


def check_top_k(top_k: TopK, num_labels: int) -> TopK:
    """Validate a user's `top_k`: a positive int (capped at the label count), None or BEST."""
    if top_k is BEST or top_k is None:
        return top_k
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError(f"top_k must be a positive integer or None (all labels), got {top_k!r}")
    return min(top_k, num_labels)
