"""Training plots with matplotlib (headless): loss and accuracy per epoch, and a confusion matrix."""

from __future__ import annotations

from pathlib import Path

from clearpipe.training.metrics import Evaluation


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
