"""`clearpipe evaluate`: score a model on a labelled file, through the same Classifier as `classify`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from clearpipe.cli import options, startup


def evaluate(
    model: Annotated[str, typer.Argument(help="Checkpoint folder or hub id.")],
    data: Annotated[
        Path, typer.Argument(help="Labelled data: .csv, .tsv, .json, .jsonl, .parquet or a folder.")
    ],
    text_column: Annotated[str | None, typer.Option("--text-column", help="Column with the text.")] = None,
    text_pair_column: Annotated[
        str | None, typer.Option("--text-pair-column", help="Column with the second text of a pair.")
    ] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Column with the label.")] = None,
    label_sep: Annotated[
        str, typer.Option("--label-sep", help="Separator of labels in a multi-label cell.")
    ] = ",",
    errors: Annotated[int, typer.Option("--errors", min=0, help="List the N most confident mistakes.")] = 0,
    max_length: options.MaxLength = None,
    batch_size: options.BatchSize = 64,
    device: options.Device = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
) -> None:
    """Accuracy, precision/recall/F1 per class and macro/micro, confusion matrix, ROC AUC, log loss and
    calibration error of MODEL on DATA."""
    import clearpipe
    from clearpipe.training.data import DataOptions
    from clearpipe.training.evaluation import evaluate_file

    clf = clearpipe.load(model, max_length=max_length, batch_size=batch_size, device=device)
    startup.resume_collector()
    data_options = DataOptions(
        text_column=text_column, pair_column=text_pair_column, label_column=label_column, label_sep=label_sep
    )
    result, report = evaluate_file(clf, data, data_options, n_errors=errors)
    if as_json:
        out = result.to_dict()
        out["dropped"] = {reason: len(rows) for reason, rows in report.dropped.items()}
        print(json.dumps(out, ensure_ascii=False, default=str))
        return
    _print(result, report)


def _print(result, report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    auc = f"{result.roc_auc:.4f}" if result.roc_auc is not None else "-"
    console.print(
        f"{result.rows} rows: accuracy {result.accuracy:.4f}, macro-F1 {result.macro_f1:.4f}, "
        f"micro-F1 {result.micro['f1']:.4f}, ROC AUC {auc}, log loss {result.log_loss:.4f}, "
        f"ECE {result.ece:.4f}"
    )
    for reason, rows in report.dropped.items():
        console.print(f"dropped {len(rows)} rows: {reason} (rows {', '.join(map(str, rows[:5]))})")
    table = Table(show_edge=False, header_style="bold")
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for name, m in result.per_class.items():
        table.add_row(
            name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"])
        )
    for avg in ("macro", "micro"):
        m = getattr(result, avg)
        table.add_row(f"[italic]{avg}", f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", "")
    console.print(table)
    if isinstance(result.confusion, list):
        console.print(_confusion_table(result.labels, result.confusion))
    if result.thresholds:
        console.print("thresholds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.thresholds.items()))
    if result.errors:
        console.print(f"{len(result.errors)} most confident mistakes:")
        for e in result.errors:
            text = str(e["text"])
            text = text if len(text) <= 120 else text[:117] + "..."
            console.print(
                f"  row {e['row']}: {e['predicted']} ({e['confidence']:.3f}), truly {e['label']}: {text}",
                markup=False,
            )


def _confusion_table(labels: list[str], matrix: list[list[int]]):
    from rich.table import Table

    table = Table(title="confusion (rows: true, columns: predicted)", show_edge=False, header_style="bold")
    table.add_column("")
    for name in labels:
        table.add_column(name, justify="right")
    for name, row in zip(labels, matrix, strict=True):
        table.add_row(name, *map(str, row))
    return table
