"""`clearpipe evaluate`: score a model on a labelled file, through the same Classifier as `classify`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from clearpipe.cli import ner, options, startup
from clearpipe.cli.loading import LoadFlags, from_flags


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
    errors: Annotated[
        int | None,
        typer.Option(
            "--errors",
            min=0,
            help="List the N most confident mistakes (default 0); a named-entity model: the N sentences "
            "with the most wrong entities (default 10, 0 lists none).",
        ),
    ] = None,
    no_header: options.NoHeader = False,
    encoding: options.Encoding = "utf-8",
    max_length: options.MaxLength = None,
    batch_size: options.BatchSize = 64,
    device: options.Device = "auto",
    calibrated: options.Calibrated = True,
    plots: Annotated[
        Path | None,
        typer.Option("--plots", help="Write reliability.png and risk_coverage.png into this folder."),
    ] = None,
    target_accuracy: Annotated[
        float | None,
        typer.Option(
            "--target-accuracy",
            min=0.0,
            max=1.0,
            help="Print the smallest --min-score whose kept predictions reach this accuracy on DATA, "
            "and the share of rows it keeps.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
) -> None:
    """Accuracy, precision/recall/F1 per class and macro/micro, confusion matrix, ROC AUC, log loss,
    calibration (ECE before and after the saved temperature, Brier score) and accuracy at 90% and 80%
    coverage of MODEL on DATA. A named-entity MODEL on a CoNLL or NER JSONL file: entity precision/
    recall/F1 per type and overall, token accuracy, confusion of types and the worst sentences."""
    from clearpipe.cli.outputs import check_folder
    from clearpipe.training.data import DataOptions
    from clearpipe.training.evaluation import evaluate_scored, read_file, score_split

    if plots is not None:
        check_folder(plots, "--plots")
    clf = from_flags(LoadFlags, locals()).load()
    startup.resume_collector()
    if ner.is_tagger(clf):  # a named-entity model: entity-level figures (clearpipe.training.ner)
        return ner.evaluate(clf, data, ner.WORST if errors is None else errors, as_json, encoding)
    multi = clf.settings.thresholds is not None
    if multi and (plots or target_accuracy is not None):
        raise _single_label_only(clf.source)
    data_options = from_flags(DataOptions, locals(), pair_column=text_pair_column, header=not no_header)
    split, report = read_file(clf, data, data_options)
    scored = score_split(clf, split)
    result = evaluate_scored(clf, split, scored, n_errors=errors or 0)
    trust = None if multi else _trust(scored)
    if plots is not None and trust is not None:
        _plot(trust, scored, plots)
    target = None if target_accuracy is None or trust is None else trust.min_score_for(target_accuracy)
    if as_json:
        out = result.to_dict()
        out["dropped"] = {reason: len(rows) for reason, rows in report.dropped.items()}
        if trust is not None:
            out["trust"] = trust.to_dict()
        if target_accuracy is not None:
            out["target"] = {
                "accuracy": target_accuracy,
                "reached": None if target is None else target.__dict__,
            }
        print(json.dumps(out, ensure_ascii=False, default=str))
        return
    _print(result, report)
    if trust is not None:
        _print_trust(result, trust, target_accuracy, target)


def _single_label_only(source: str) -> Exception:
    from clearpipe.errors import InputError

    return InputError(
        f"{source} is a multi-label model: --plots and --target-accuracy describe single-label scores "
        "(each label of a multi-label model is decided by its saved threshold)"
    )


def _trust(scored):
    from clearpipe.training.trust import assess_scores

    return assess_scores(scored.scores, scored.y)


def _plot(trust, scored, folder: Path) -> None:
    from clearpipe.training import plots
    from clearpipe.training.trust import assess_scores

    folder.mkdir(parents=True, exist_ok=True)
    before = None if scored.raw is None else assess_scores(scored.raw, scored.y)
    t = scored.temperature
    note = (
        None
        if t is None
        else f"T = {t.value:.3f}" + ("" if t.power == 1.0 else f", margin power {t.power:.3f}")
    )
    plots.reliability(trust, folder / "reliability.png", before, note)
    plots.risk_coverage(trust, folder / "risk_coverage.png")


def _print_trust(result, trust, target_accuracy: float | None, target) -> None:
    from clearpipe.training.trust import COVERAGES

    if result.calibration is not None:
        c, raw = result.calibration, result.uncalibrated
        power = f", margin power {c['power']:.3f}" if "power" in c else ""
        print(
            f"calibration: temperature {c['temperature']:.3f}{power}: ECE {raw['ece']:.4f} -> {result.ece:.4f}, "
            f"log loss {raw['log_loss']:.4f} -> {result.log_loss:.4f}, Brier {raw['brier']:.4f} -> {result.brier:.4f}"
        )
    else:
        print(f"calibration: none applied (raw softmax); ECE {result.ece:.4f}, Brier {result.brier:.4f}")
    # Rows with equal scores are kept together, so a coverage can come out a little above its target.
    kept = {c: trust.at_coverage(c) for c in COVERAGES}
    print(
        "accuracy at coverage: "
        + ", ".join(
            f"{k.accuracy:.4f} at {c:.0%} ({k.coverage:.1%} kept, min_score {k.min_score:.3f})"
            for c, k in kept.items()
        )
    )
    if target_accuracy is None:
        return
    if target is None:
        best = max(trust.curve, key=lambda k: k.accuracy)
        print(
            f"target accuracy {target_accuracy}: no min_score reaches it on this data "
            f"(best {best.accuracy:.4f}, keeping {best.rows} rows)"
        )
    else:
        print(
            f"target accuracy {target_accuracy}: --min-score {target.min_score:.4f} keeps {target.coverage:.1%} "
            f"of rows ({target.rows} of {trust.rows}) at accuracy {target.accuracy:.4f}"
        )


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
