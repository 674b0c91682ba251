"""How closely a fast mode (bf16, int8, an ONNX export) agrees with the fp32 model it came from.

Used by `clearpipe export`'s accuracy guard and by `benchmarks/throughput.py`: label agreement
is the share of inputs whose best label is the same, and the score difference is the largest
absolute difference of any label's score over all inputs. For a token classifier (`compare_tokens`)
the inputs are the texts' tokens, and the share of texts whose entities are identical is kept too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clearpipe.errors import ClearpipeError
from clearpipe.postprocess import Predictions

DEFAULT_THRESHOLD = 0.99
"""Least label agreement with fp32 that an export or reduced-precision mode must reach."""


class AccuracyError(ClearpipeError):
    """A converted model disagrees with its fp32 original more than the threshold allows."""


@dataclass(frozen=True)
class Agreement:
    """Label agreement (0..1) and largest |score difference| of a candidate vs a reference, over
    `rows` `unit` (texts, or a token classifier's tokens, with `same_entities`: the share of texts
    whose entities are identical, scores aside)."""

    rows: int
    label_agreement: float
    max_score_diff: float
    unit: str = "texts"
    same_entities: float | None = None

    def summary(self) -> str:
        entities = (
            "" if self.same_entities is None else f", identical entities in {self.same_entities:.2%} of texts"
        )
        return (
            f"label agreement {self.label_agreement:.2%} over {self.rows} {self.unit}{entities}, "
            f"largest |score difference| {self.max_score_diff:.4f}"
        )


def compare(reference: Predictions, candidate: Predictions) -> Agreement:
    """Compare two predictions of the same inputs, label for label.

    >>> compare(fp32_predictions, int8_predictions).label_agreement  # doctest: +SKIP
    0.995
    """
    if reference.scores.shape != candidate.scores.shape:
        raise ValueError(f"shapes differ: {reference.scores.shape} vs {candidate.scores.shape}")
    rows = len(reference)
    same = float(np.mean(reference.best == candidate.best)) if rows else 1.0
    diff = float(np.max(np.abs(reference.scores - candidate.scores))) if rows else 0.0
    return Agreement(rows=rows, label_agreement=same, max_score_diff=diff)


def compare_tokens(
    reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], same_entities: Sequence[bool]
) -> Agreement:
    """Compare two token classifiers' per-token scores, (tokens, labels) per text, token for token;
    `same_entities` says, per text, whether both found the same entities.

    >>> compare_tokens([np.eye(2)], [np.eye(2)], [True]).summary()
    'label agreement 100.00% over 2 tokens, identical entities in 100.00% of texts, largest |score difference| 0.0000'
    """
    shapes = [(a.shape, b.shape) for a, b in zip(reference, candidate, strict=True) if a.shape != b.shape]
    if shapes:
        raise ValueError(f"shapes differ: {shapes[0][0]} vs {shapes[0][1]}")
    rows = sum(len(a) for a in reference)
    same = sum(
        int(np.sum(a.argmax(-1) == b.argmax(-1))) for a, b in zip(reference, candidate, strict=True) if len(a)
    )
    diff = max(
        (float(np.max(np.abs(a - b))) for a, b in zip(reference, candidate, strict=True) if len(a)),
        default=0.0,
    )
    texts = len(same_entities)
    return Agreement(
        rows=rows,
        label_agreement=same / rows if rows else 1.0,
        max_score_diff=diff,
        unit="tokens",
        same_entities=sum(same_entities) / texts if texts else 1.0,
    )


def require(agreement: Agreement, threshold: float, what: str) -> None:
    """Raise `AccuracyError` when `agreement` falls under `threshold` (a fraction, e.g. 0.99)."""
    if agreement.label_agreement < threshold:
        raise AccuracyError(
            f"{what} was refused: {agreement.summary()} is under the required {threshold:.2%} "
            "agreement with the fp32 model"
        )
