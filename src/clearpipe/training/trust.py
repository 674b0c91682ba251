"""How far a model's scores can be trusted on labelled data, as `clearpipe evaluate` shows it.

* Reliability: predictions binned by confidence (the best label's score), each bin's mean
  confidence against its accuracy; the expected calibration error (ECE) is their weighted gap.
* Risk-coverage: keep only the predictions whose score reaches `min_score` (the rest abstain,
  see `clearpipe.postprocess`); as `min_score` rises, coverage (the share kept) falls and the
  accuracy of what is kept should rise. `min_score_for` finds the smallest `min_score` that
  reaches a target accuracy on the data, which keeps the most predictions.

Single-label models only: a multi-label model decides each label by its threshold instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from clearpipe.training.metrics import ECE_BINS

COVERAGES = (0.9, 0.8)
"""The coverages `clearpipe evaluate` reports accuracy at."""


@dataclass(frozen=True)
class Bin:
    """One confidence bin of a reliability diagram."""

    lower: float
    upper: float
    rows: int
    confidence: float
    accuracy: float


@dataclass(frozen=True)
class Kept:
    """The predictions kept by one `min_score`: how many (as a share) and how accurate."""

    min_score: float
    coverage: float
    accuracy: float
    rows: int


@dataclass(frozen=True)
class Trust:
    """Reliability bins and the risk-coverage curve of one model's scores on one labelled set.

    `curve` has one point per distinct score, highest `min_score` (least coverage) first.
    """

    rows: int
    reliability: list[Bin]
    curve: list[Kept]

    def at_coverage(self, coverage: float) -> Kept:
        """The point keeping at least `coverage` of the rows with the highest `min_score`.

        >>> assess(np.array([0.9, 0.8, 0.6, 0.55]), np.array([1, 1, 0, 1])).at_coverage(0.5).accuracy
        1.0
        """
        return next(point for point in self.curve if point.coverage >= coverage - 1e-12)

    def min_score_for(self, accuracy: float) -> Kept | None:
        """The smallest `min_score` whose kept predictions reach `accuracy`, or None if none does.

        >>> assess(np.array([0.9, 0.8, 0.6, 0.55]), np.array([1, 1, 0, 1])).min_score_for(0.99).min_score
        0.8
        """
        reaching = [point for point in self.curve if point.accuracy >= accuracy]
        return reaching[-1] if reaching else None

    def to_dict(self, points: int = 101) -> dict:
        """JSON form: the bins, accuracy at `COVERAGES`, and the curve thinned to `points` at most."""
        kept = (
            np.unique(np.linspace(0, len(self.curve) - 1, points).round().astype(int)) if self.curve else []
        )
        return {
            "rows": self.rows,
            "reliability": [asdict(b) for b in self.reliability],
            "accuracy_at_coverage": {f"{c:.0%}": asdict(self.at_coverage(c)) for c in COVERAGES},
            "risk_coverage": [asdict(self.curve[i]) for i in kept],
        }


def assess(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> Trust:
    """Reliability and risk-coverage of predictions with these confidences (N,) and correctness (N,).

    >>> assess(np.array([0.9, 0.6]), np.array([True, False])).curve[0].accuracy
    1.0
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    return Trust(len(confidence), reliability(confidence, correct, bins), risk_coverage(confidence, correct))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[Bin]:
    """Equal-width confidence bins (the ones ECE uses), empty bins left out."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    found = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            found.append(
                Bin(
                    lower=round(float(edges[b]), 6),
                    upper=round(float(edges[b + 1]), 6),
                    rows=int(mask.sum()),
                    confidence=float(confidence[mask].mean()),
                    accuracy=float(correct[mask].mean()),
                )
            )
    return found


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> list[Kept]:
    """Accuracy of the predictions kept by each distinct `min_score`, highest first."""
    order = np.argsort(-confidence, kind="stable")
    sorted_conf = confidence[order]
    hits = np.cumsum(correct[order])
    n = len(confidence)
    # Rows with equal scores are kept or dropped together: cut only where the score changes.
    ends = np.flatnonzero(np.append(sorted_conf[1:] < sorted_conf[:-1], True))
    return [
        Kept(
            min_score=float(sorted_conf[end]),
            coverage=float((end + 1) / n),
            accuracy=float(hits[end] / (end + 1)),
            rows=int(end + 1),
        )
        for end in ends
    ]


def assess_scores(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> Trust:
    """`assess` of single-label scores (N, L) against label ids (N,): confidence is the best score.

    >>> assess_scores(np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([0, 0])).curve[-1].accuracy
    0.5
    """
    return assess(probs.max(axis=1), probs.argmax(axis=1) == y, bins)
