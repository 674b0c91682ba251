"""How closely a fast mode (bf16, int8, an ONNX export) agrees with the fp32 model it came from.

Used by `clearpipe export`'s accuracy guard and by `benchmarks/throughput.py`: label agreement
is the share of inputs whose best label is the same, and the score difference is the largest
absolute difference of any label's score over all inputs.
"""

from __future__ import annotations

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
    """Label agreement (0..1) and largest |score difference| of a candidate vs a reference."""

    rows: int
    label_agreement: float
    max_score_diff: float

    def summary(self) -> str:
        return (
            f"label agreement {self.label_agreement:.2%} over {self.rows} texts, "
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


def require(agreement: Agreement, threshold: float, what: str) -> None:
    """Raise `AccuracyError` when `agreement` falls under `threshold` (a fraction, e.g. 0.99)."""
    if agreement.label_agreement < threshold:
        raise AccuracyError(
            f"{what} was refused: {agreement.summary()} is under the required {threshold:.2%} "
            "agreement with the fp32 model"
        )
