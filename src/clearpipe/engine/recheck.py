"""Close calls of an int8 model, re-run by the float model it was quantized from.

int8 arithmetic moves every logit a little. A row whose two best logits lie further apart than
int8 can move them keeps its label; a row closer than that may flip. On the embedded sentiment
model, int8 alone agreed with float32 on 99.8% of SST-2 labels but only 98.5% of AG News, where
3% of the texts sit near the decision boundary. So `dtype="int8"` keeps a `Referee`: the same
checkpoint in the default float dtype (bf16 where the CPU computes it, else float32). After the
int8 pass, rows whose top-two logit gap is under the referee's `margin` run again in float, and
their logits replace int8's. Models with sigmoid scores (multi-label) also re-run rows with any
logit within `margin` of zero, where a label's yes/no decision sits.

`margin` is measured when the model loads (`calibrate`): both models classify the built-in
validation sample of the model's kind, and the margin is the 99th percentile of how far int8
moved the gap between any two logits of a row. A row outside it flips only if int8 moved it
more than it moved 99% of the sample, in the right direction, by more than its own gap.
"""

from __future__ import annotations

import numpy as np

QUANTILE = 0.99
"""Share of the calibration sample whose int8 gap shift the margin covers.

The referee itself, the float runner and its margin, is `clearpipe.engine.loop.Referee`: the
loop re-runs the close calls."""


def gap_shift(fast: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per row, the most the fast logits moved the difference between any two of its logits.

    For logits (rows, labels) it is max(d) - min(d) of d = fast - reference, and for one logit |d|.

    >>> gap_shift(np.array([[1.0, 2.0]]), np.array([[1.5, 1.5]])).tolist()
    [1.0]
    """
    shift = fast.astype(np.float64) - reference
    if shift.shape[1] == 1:
        return np.abs(shift[:, 0])
    return shift.max(axis=1) - shift.min(axis=1)


def calibrate(fast: np.ndarray, reference: np.ndarray, quantile: float = QUANTILE) -> float:
    """The margin under which a fast model's row is a close call: a quantile of `gap_shift`.

    >>> calibrate(np.array([[0.0, 1.0], [0.0, 3.0]]), np.array([[0.0, 1.2], [0.0, 3.0]]), 1.0)
    0.2
    """
    if len(fast) == 0:
        raise ValueError("calibration needs at least one row")
    return round(float(np.quantile(gap_shift(fast, reference), quantile)), 6)


def close_calls(logits: np.ndarray, margin: float, sigmoid: bool = False) -> np.ndarray:
    """Indices of the rows whose decision int8 could have flipped: the ones to re-run in float.

    A row is a close call when its two best logits are less than `margin` apart (one-logit
    models: when the logit is), or, with `sigmoid` scores, when any logit is within `margin` of 0.

    >>> close_calls(np.array([[0.1, 0.3], [0.0, 4.0]]), margin=0.5).tolist()
    [0]
    """
    logits = logits.astype(np.float64)  # compared with a Python float, never rounded to float32
    if logits.shape[1] == 1:
        near = np.abs(logits[:, 0]) < margin
    else:
        top2 = np.partition(logits, -2, axis=1)[:, -2:]
        near = (top2[:, 1] - top2[:, 0]) < margin
        if sigmoid:
            near |= (np.abs(logits) < margin).any(axis=1)
    return np.flatnonzero(near)
