"""What a training run shows and leaves behind: the data report, the live epoch table, a text
chart, the data-flow summary, and the files `metrics.json`, `trace.json`, `training_config.json`,
`curves.png`, `confusion_matrix.png` and the `README.md` model card.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from clearpipe.training.calibration import Calibration, card_section
from clearpipe.training.data import DataReport, TrainingData
from clearpipe.training.features import BatchShapes, LengthStats
from clearpipe.training.metrics import Evaluation

TRACE_VERSION = 1
PROGRESS_EVERY_S = 60.0
"""Without a terminal (no progress bar), print the step count this often during long epochs."""


# Before training ---------------------------------------------------------------------------------
def print_data_report(report: DataReport) -> None:
    """Print rows read and kept, columns used, label counts, drops with their first rows, overlaps."""
    cols = report.columns
    used = f'text "{cols.text}"' + (f', pair "{cols.pair}"' if cols.pair else "") + f', label "{cols.label}"'
    kind = "multi-label" if report.labels.multi_label else "single-label"
    print(f"data: columns {used}; {len(report.labels.names)} labels, {kind}", flush=True)
    for split in report.splits:
        counts = ", ".join(f"{name} {n}" for name, n in split.label_counts.items())
        print(
            f"  {split.name:<10} {split.source}: {split.rows_read} rows read, {split.rows_kept} used ({counts})"
        )
        for reason, rows in split.dropped.items():
            first = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
            print(f"             dropped {len(rows)} rows: {reason} (rows {first})")
    for warning in report.warnings():
        print(f"  warning: {warning}")


def print_lengths(stats: LengthStats) -> None:
    print(
        f"tokens per row: mean {stats.mean}, median {stats.p50}, p95 {stats.p95}, p99 {stats.p99}, "
        f"longest {stats.longest}; max length {stats.max_length} (model limit {stats.model_limit}), "
        f"{stats.truncated} training rows truncated",
        flush=True,
    )


# During training ---------------------------------------------------------------------------------
class EpochTable(TrainerCallback):
    """Prints one row per epoch as it ends: train loss, validation loss, the validation scores
    `SCORES` names (accuracy and macro-F1; named-entity training shows its own), seconds."""

    SCORES: tuple[tuple[str, str], ...] = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"))  # (key, title)

    def __init__(self, metric: str, enabled: bool = True) -> None:
        self.metric = metric
        self.enabled = enabled
        self.rows: list[dict] = []
        self._train_loss: float | None = None
        self._since = time.monotonic()
        self._noted = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self._since = time.monotonic()
        self.rows = rows_from_history(state.log_history, self.keys())  # epochs done before a --resume
        if self.enabled:
            titles = "  ".join(f"{title:>{_width(title)}}" for _, title in self.SCORES)
            print(f"{'epoch':>5}  {'train loss':>10}  {'val loss':>8}  {titles}  {'seconds':>7}", flush=True)
            for row in self.rows:
                print(self.format_row(row), flush=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.enabled and args.disable_tqdm and time.monotonic() - self._noted >= PROGRESS_EVERY_S:
            self._noted = time.monotonic()
            print(f"      step {state.global_step}/{state.max_steps}", flush=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self._train_loss = float(logs["loss"])

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        row = {
            "epoch": round(float(state.epoch or 0), 2),
            "step": state.global_step,
            "train_loss": self._train_loss,
            "val_loss": metrics.get("eval_loss"),
            **{key: metrics.get(f"eval_{key}") for key in self.keys()},
            "seconds": round(time.monotonic() - self._since, 1),
        }
        self._since = time.monotonic()
        self.rows.append(row)
        if self.enabled:
            print(self.format_row(row), flush=True)

    def keys(self) -> list[str]:
        return [key for key, _ in self.SCORES]

    def format_row(self, row: dict) -> str:
        scores = "  ".join(_num(row[key], _width(title)) for key, title in self.SCORES)
        return (
            f"{row['epoch']:>5g}  {_num(row['train_loss'], 10)}  {_num(row['val_loss'], 8)}  "
            f"{scores}  {_num(row['seconds'], 7, 1)}"
        )


def rows_from_history(history: list[dict], keys: Sequence[str] = ("accuracy", "macro_f1")) -> list[dict]:
    """Epoch rows rebuilt from a restored `TrainerState.log_history` (their seconds are unknown)."""
    losses = {entry["step"]: entry["loss"] for entry in history if "loss" in entry}
    return [
        {
            "epoch": round(float(entry.get("epoch", 0)), 2),
            "step": entry["step"],
            "train_loss": losses.get(entry["step"]),
            "val_loss": entry.get("eval_loss"),
            **{key: entry.get(f"eval_{key}") for key in keys},
            "seconds": None,
        }
        for entry in history
        if "eval_loss" in entry
    ]


def _width(title: str) -> int:
    return max(8, len(title))


def _num(value, width: int, digits: int = 4) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


class FlowRecorder:
    """Collects the shapes of the data flow from the run itself (see `summary`)."""

    def __init__(self) -> None:
        self.logits_shape: tuple[int, int] | None = None
        self.predicted: dict[int, int] = {}

    def record_eval(self, shape: tuple[int, int], probs: np.ndarray, multi: bool) -> None:
        self.logits_shape = (int(shape[0]), int(shape[1]))
        pred = (probs >= 0.5).sum(axis=0) if multi else np.bincount(probs.argmax(axis=1), minlength=shape[1])
        self.predicted = {i: int(n) for i, n in enumerate(pred)}

    def summary(self, data: TrainingData, lengths: LengthStats, shapes: BatchShapes, batch_size: int) -> dict:
        """rows x columns -> token ids per row -> batches (batch x sequence) -> logits -> labels."""
        names = data.labels.names
        train = data.report.splits[0]
        return {
            "loaded": {
                "rows": train.rows_read,
                "columns": len(data.report.column_names),
                "column_names": data.report.column_names,
            },
            "token_ids": {"rows": len(data.train), **lengths.to_dict()},
            "batches": shapes.to_dict(),
            "logits": {
                "per_batch": [min(batch_size, self.logits_shape[0]), self.logits_shape[1]]
                if self.logits_shape
                else None,
                "validation_shape": list(self.logits_shape) if self.logits_shape else None,
            },
            "predicted_labels": {names[i]: n for i, n in self.predicted.items()},
        }


def format_flow(flow: dict) -> str:
    """One line per stage of the data flow, with the run's numbers."""
    loaded, tokens, batches = flow["loaded"], flow["token_ids"], flow["batches"]
    width = batches["sequence_width"]
    logits = flow["logits"]
    labels = ", ".join(f"{k} {v}" for k, v in flow["predicted_labels"].items())
    return "\n".join(
        [
            "data flow:",
            f"  table          {loaded['rows']} rows x {loaded['columns']} columns",
            f"  token ids      {tokens['rows']} rows, {tokens['mean']} tokens on average (p99 {tokens['p99']}, "
            f"longest {tokens['longest']}) -> max length {tokens['max_length']}, {tokens['truncated']} truncated",
            f"  batches        {batches['batches']} padded batches, first {_shape(batches['first_batch'])}, "
            f"width {width['min']}-{width['max']} (mean {width['mean']}), "
            f"{batches['padding_fraction']:.0%} padding",
            f"  logits         {_shape(logits['per_batch'])} per batch (batch x labels), "
            f"{_shape(logits['validation_shape'])} on the validation set",
            f"  predictions    {labels}",
        ]
    )


def _shape(shape) -> str:
    return " x ".join(map(str, shape)) if shape else "-"


# After training ----------------------------------------------------------------------------------
@dataclass
class RunArtifacts:
    config: dict
    resolved: dict
    data: DataReport
    lengths: LengthStats
    epochs: list[dict]
    evaluations: dict[str, Evaluation]
    flow: dict
    best_epoch: float | None
    global_step: int
    seconds: float
    thresholds: list[float] | None
    calibration: Calibration | None = None  # the temperature fitted on validation, saved in config.json


def text_chart(rows: list[dict], key: str, width: int = 40) -> str:
    """A horizontal bar per epoch for one series (loss or accuracy), scaled to its own range."""
    values = [(r["epoch"], r.get(key)) for r in rows if r.get(key) is not None]
    if not values:
        return ""
    # Bars start a little below the smallest value so that small changes stay visible.
    low, high = min(v for _, v in values), max(v for _, v in values)
    floor = low - (high - low) * 0.25 if high > low else 0.0
    top = high - floor or 1.0
    lines = [f"{key}:"]
    for epoch, value in values:
        bar = "#" * max(1, round(width * (value - floor) / top))
        lines.append(f"  epoch {epoch:>4g} {bar} {value:.4f}")
    return "\n".join(lines)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in (
        "clearpipe",
        "torch",
        "transformers",
        "tokenizers",
        "datasets",
        "accelerate",
        "scikit-learn",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def write_run(output: Path, run: RunArtifacts) -> None:
    """Print the end-of-run summary and write every report file into `output`."""
    for key in ("train_loss", "val_loss", "accuracy"):
        chart = text_chart(run.epochs, key)
        if chart:
            print(chart)
    print(format_flow(run.flow))
    for name, ev in run.evaluations.items():
        print(f"{name}: accuracy {ev.accuracy:.4f}, macro-F1 {ev.macro_f1:.4f} ({ev.rows} rows)")
    print(f"saved to {output} ({run.global_step} optimizer steps, {run.seconds:.0f} s)", flush=True)
    metrics = {name: ev.to_dict() for name, ev in run.evaluations.items()}
    if run.calibration is not None:
        metrics["calibration"] = run.calibration.to_dict()
    _write_json(output / "metrics.json", metrics)
    _write_json(
        output / "training_config.json",
        {"arguments": run.config, "resolved": run.resolved, "versions": library_versions()},
    )
    _write_json(
        output / "trace.json",
        {
            "version": TRACE_VERSION,
            "epochs": run.epochs,
            "best_epoch": run.best_epoch,
            "optimizer_steps": run.global_step,
            "seconds": round(run.seconds, 1),
            "data": run.data.to_dict(),
            "data_flow": run.flow,
        },
    )
    from clearpipe.training import plots

    plots.curves(run.epochs, output / "curves.png")
    final = run.evaluations.get("test") or run.evaluations["validation"]
    plots.confusion(final, output / "confusion_matrix.png")
    (output / "README.md").write_text(model_card(output, run), encoding="utf-8")


def _teacher_lines(teacher: dict | None) -> list[str]:
    """The model card's sentence on distillation (`clearpipe train --teacher`), if there was one."""
    if not teacher:
        return []
    if "teachers" in teacher:  # several: the student learnt from their mean logits
        each = "; ".join(f"`{t['source']}` ({_scores(t)})" for t in teacher["teachers"])
        source = f"the mean logits of {len(teacher['teachers'])} teachers ({_scores(teacher)}: {each})"
    else:
        source = f"the teacher `{teacher['source']}` ({_scores(teacher)})"
    states = ""
    if teacher.get("hidden_weight"):
        states = f", and each layer learnt its mean-pooled states with weight {teacher['hidden_weight']}"
    return [
        f"Distilled from {source} at temperature "
        f"{teacher['temperature']} with weight {teacher['weight']} on its scores{states}; "
        f"{teacher['unlabeled_rows']} unlabelled rows learnt from the teacher alone.",
        "",
    ]


def _scores(teacher: dict) -> str:
    scores = ", ".join(f"{name} accuracy {acc:.4f}" for name, acc in teacher.get("accuracy", {}).items())
    return scores or "not scored"


def _write_json(path: Path, value: object) -> None:
    path.write_text(
        json.dumps(value, indent=2, ensure_ascii=False, default=_jsonable) + "\n", encoding="utf-8"
    )


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def model_card(output: Path, run: RunArtifacts) -> str:
    """A Hugging Face model card: data, labels, hyperparameters, metrics and date."""
    cfg, res = run.config, run.resolved
    labels = run.data.labels.names
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [clearpipe, text-classification]",
        "---",
        "",
        f"# {output.name}",
        "",
        f"A {'multi-label ' if run.data.labels.multi_label else ''}text classifier fine-tuned from "
        f"`{cfg['base']}` with `clearpipe train` on {datetime.now(UTC):%Y-%m-%d}.",
        "",
        "## Labels",
        "",
        *[f"- `{i}`: {name}" for i, name in enumerate(labels)],
        "",
        "## Data",
        "",
    ]
    for split in run.data.splits:
        lines.append(f"- {split.name}: `{split.source}`, {split.rows_kept} rows used of {split.rows_read}")
    lines += [
        "",
        "## Training",
        "",
        "| setting | value |",
        "| --- | --- |",
        *[
            f"| {k} | {v} |"
            for k, v in {
                "learning rate": cfg["learning_rate"],
                "epochs": cfg["epochs"],
                "batch size": cfg["batch_size"],
                "gradient accumulation": cfg["gradient_accumulation"],
                "warmup": cfg["warmup"],
                "weight decay": cfg["weight_decay"],
                "max length": res["max_length"],
                "class weights": cfg["class_weights"],
                "best checkpoint by": res["selection_metric"],
                "best epoch": run.best_epoch,
                "optimizer steps": run.global_step,
                "bf16": res["bf16"],
                "saved as": cfg["save_dtype"],
                "seed": cfg["seed"],
                "wall time (s)": round(run.seconds),
            }.items()
        ],
        "",
        *_teacher_lines(res.get("teacher")),
        "Training keeps fp32 master weights (a half-precision base is upcast when loaded)"
        + (" with bf16 autocast" if res["bf16"] else "")
        + f"; the weights are saved as {cfg['save_dtype']}.",
        "",
        "## Results",
        "",
        "| set | rows | accuracy | macro-F1 | micro-F1 | ROC AUC | log loss | ECE |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, ev in run.evaluations.items():
        auc = f"{ev.roc_auc:.4f}" if ev.roc_auc is not None else "-"
        lines.append(
            f"| {name} | {ev.rows} | {ev.accuracy:.4f} | {ev.macro_f1:.4f} | {ev.micro['f1']:.4f} | "
            f"{auc} | {ev.log_loss:.4f} | {ev.ece:.4f} |"
        )
    if run.thresholds:
        lines += ["", "Decision thresholds per label (tuned on validation data, saved in config.json):", ""]
        lines += [f"- {n}: {t:.2f}" for n, t in zip(labels, run.thresholds, strict=True)]
    if run.calibration is not None:
        lines += ["", *card_section(run.calibration)[:-1]]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "import clearpipe",
        f'clf = clearpipe.load("{output.name}")',
        'clf("I love this movie!")',
        "```",
        "",
        'It is a plain Hugging Face checkpoint: `transformers.pipeline("text-classification", model=...)` '
        "loads it too. `training_config.json` holds every setting and library version, `trace.json` the "
        "training trace, `metrics.json` the full metrics.",
        "",
    ]
    return "\n".join(lines)
