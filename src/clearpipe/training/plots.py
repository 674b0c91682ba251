"""Training plots with matplotlib (headless): loss and accuracy per epoch, a confusion matrix, and
for `clearpipe evaluate --plots` a reliability diagram and a risk-coverage curve."""

from __future__ import annotations

from pathlib import Path

from clearpipe.training.metrics import Evaluation
from clearpipe.training.trust import COVERAGES, Trust


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(rows: list[dict], path: Path) -> None:
    """Train/validation loss and validation accuracy / macro-F1 per epoch, side by side."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train loss"), ("val_loss", "validation loss")):
        points = [(e, r[key]) for e, r in zip(epochs, rows, strict=True) if r.get(key) is not None]
        if points:
            loss_ax.plot(*zip(*points, strict=True), marker="o", label=label)
    for key, label in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        points = [(e, r[key]) for e, r in zip(epochs, rows, strict=True) if r.get(key) is not None]
        if points:
            acc_ax.plot(*zip(*points, strict=True), marker="o", label=label)
    loss_ax.set(title="loss", xlabel="epoch")
    acc_ax.set(title="validation", xlabel="epoch")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion(evaluation: Evaluation, path: Path) -> None:
    """The confusion matrix (true label rows, predicted label columns) with counts in the cells.

    Multi-label evaluations get one 2x2 matrix per label, side by side.
    """
    plt = _pyplot()
    matrices = evaluation.confusion if isinstance(evaluation.confusion, dict) else {"": evaluation.confusion}
    fig, axes = plt.subplots(1, len(matrices), figsize=(max(4, 3.2 * len(matrices)), 4), squeeze=False)
    for ax, (title, matrix) in zip(axes[0], matrices.items(), strict=True):
        ticks = ["no", "yes"] if title else evaluation.labels
        ax.imshow(matrix, cmap="Blues")
        top = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, n in enumerate(row):
                ax.text(j, i, str(n), ha="center", va="center", color="white" if n > top / 2 else "black")
        ax.set_xticks(range(len(ticks)), ticks, rotation=45, ha="right")
        ax.set_yticks(range(len(ticks)), ticks)
        ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reliability(after: Trust, path: Path, before: Trust | None = None, note: str | None = None) -> None:
    """Reliability diagram: accuracy against mean confidence per bin (marker size: the bin's rows),
    the diagonal being perfect calibration; with `before`, the raw softmax's bins beside the
    calibrated ones. `note` goes into the title (the temperature, say)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    series = [("calibrated" if before else "scores", after)]
    if before is not None:
        series.insert(0, ("raw softmax", before))
    for name, trust in series:
        points = [(b.confidence, b.accuracy) for b in trust.reliability]
        sizes = [20 + 200 * b.rows / trust.rows for b in trust.reliability]
        ax.plot(*zip(*points, strict=True), marker="o", markersize=0, label=name)
        ax.scatter(*zip(*points, strict=True), s=sizes, alpha=0.6)
    title = "reliability" + (f" ({note})" if note else "")
    ax.set(title=title, xlabel="confidence (best label's score)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def risk_coverage(trust: Trust, path: Path) -> None:
    """Accuracy of the kept predictions against coverage as `min_score` rises (right to left)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p.coverage for p in trust.curve], [p.accuracy for p in trust.curve])
    for coverage in COVERAGES:
        point = trust.at_coverage(coverage)
        ax.scatter([point.coverage], [point.accuracy], color="black", zorder=3)
        ax.annotate(
            f"{point.accuracy:.3f} at {point.coverage:.0%}\n(min_score {point.min_score:.3f})",
            (point.coverage, point.accuracy),
            textcoords="offset points",
            xytext=(-10, 10),
            ha="right",
            fontsize=8,
        )
    ax.set(title="risk-coverage", xlabel="coverage (share of predictions kept)", ylabel="accuracy of kept")
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
