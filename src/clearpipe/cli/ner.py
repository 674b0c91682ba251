"""Named entities on the command line: `clearpipe train` on a CoNLL or NER JSONL file (or with
`--task ner`), and `clearpipe evaluate` on a `*ForTokenClassification` model. `train.py` and
`evaluate.py` hand over to these at their top, so their classification paths stay as they were.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TASKS = ("auto", "ner", "classification")
WORST = 10
"""`clearpipe evaluate` on a tagger lists this many worst sentences unless `--errors N` says (0: none)."""


def wants_ner(task: str, data: Path) -> bool:
    """Whether `clearpipe train` trains a tagger: `--task ner`, or "auto" and a named-entity file.

    >>> wants_ner("auto", Path("reviews.csv"))
    False
    """
    from clearpipe.errors import InputError
    from clearpipe.training.ner.data import is_ner_file

    if task not in TASKS:
        raise InputError(f'--task must be "auto", "ner" or "classification", got {task!r}')
    return task == "ner" or (task == "auto" and is_ner_file(data))


def train(flags: Mapping[str, Any]) -> None:
    """`clearpipe train` for named entities, from the command's flags (TrainConfig's fields by name)."""
    from clearpipe.cli.loading import from_flags
    from clearpipe.cli.outputs import check_folder
    from clearpipe.onnx.export import refuse_export
    from clearpipe.training.data import DataOptions
    from clearpipe.training.distill import Distillation
    from clearpipe.training.ner.train import SETFIT_FLAGS, refuse_unused
    from clearpipe.training.ner.train import train as run
    from clearpipe.training.train import TrainConfig

    check_folder(flags["output"], "--output")
    refuse_export(flags["base"], "trained (--base)")
    options = from_flags(
        DataOptions, flags, pair_column=flags["text_pair_column"], header=not flags["no_header"]
    )
    teacher = flags["teacher"]
    config = from_flags(
        TrainConfig,
        flags,
        data=str(flags["data"]),
        output=str(flags["output"]),
        validation=_text(flags["validation"]),
        test=_text(flags["test"]),
        data_options=options,
        patience=flags["patience"] or None,  # the flag's 0 is the config's "never"
        distillation=Distillation(
            tuple(teacher), flags["distill_temperature"], flags["distill_weight"], flags["distill_hidden"]
        )
        if teacher
        else None,
        unlabeled=_text(flags["unlabeled"]),
    )
    refuse_unused(config, _given(flags.get("ctx"), SETFIT_FLAGS))  # before any data is read
    run(config)


def _given(context: Any, names: Iterable[str]) -> set[str]:
    """Which of the flags `names` (parameter names) the command line or environment set, even to
    their default value (`--label-prior`, `--setfit-iterations 20`), from the command's context."""
    if context is None:
        return set()
    sources = {name: context.get_parameter_source(name) for name in names}
    return {name for name, source in sources.items() if source is not None and source.name not in _DEFAULT}


_DEFAULT = ("DEFAULT", "DEFAULT_MAP")


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def is_tagger(classifier: object) -> bool:
    """Whether a loaded model tags words (a `TokenClassifier`) rather than classifying texts."""
    return hasattr(classifier, "predict_word_tags")


def evaluate(tagger, data: Path, worst: int, as_json: bool, encoding: str) -> None:
    """`clearpipe evaluate` on a tagger: entity P/R/F1 per type and overall, token accuracy, how
    far the word tag scores can be trusted (ECE, log loss), the confusion of types, the kinds of
    mistakes, and the `worst` sentences with most wrong entities."""
    from clearpipe.training.ner.evaluation import evaluate_model
    from clearpipe.training.ner.read import read_ner

    read = read_ner(data, encoding)
    result = evaluate_model(tagger, read.sentences, n_worst=worst)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    _print(result)


def _print(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    console.print(
        f"{result.sentences} sentences, {result.tokens} tokens: entity F1 {result.f1:.4f}, "
        f"token accuracy {result.token_accuracy:.4f}"
    )
    table = Table(show_edge=False, header_style="bold")
    for column in ("type", "precision", "recall", "F1", "gold", "predicted"):
        table.add_column(column, justify="left" if column == "type" else "right")
    for name, s in [*result.per_type.items(), ("[italic]overall", result.overall)]:
        table.add_row(
            name, f"{s.precision:.4f}", f"{s.recall:.4f}", f"{s.f1:.4f}", str(s.gold), str(s.predicted)
        )
    console.print(table)
    if result.scores is not None:
        console.print(_scores_line(result.scores))
    console.print(_confusion(result.confusion))
    console.print("mistakes: " + ", ".join(f"{kind} {n}" for kind, n in result.mistakes.items()))
    if result.worst:
        console.print(f"{len(result.worst)} sentences with the most wrong entities:")
    for w in result.worst:
        console.print(f"  line {w['line']} ({w['wrong']} wrong): {w['text'][:117]}", markup=False)
        console.print(f"    gold:      {'; '.join(w['gold']) or '-'}", markup=False)
        console.print(f"    predicted: {'; '.join(w['predicted']) or '-'}", markup=False)


def _scores_line(scores: dict) -> str:
    """How far the words' tag scores can be trusted, as scored and as the raw softmax."""
    t = scores["temperature"]
    how = "raw softmax" if t is None else f"temperature {t:.3f}"
    line = (
        f"word tag scores ({how}, {scores['words']} words): ECE {scores['ece']:.4f}, "
        f"log loss {scores['log_loss']:.4f}"
    )
    if t is not None:
        line += f"; raw softmax ECE {scores['raw_ece']:.4f}, log loss {scores['raw_log_loss']:.4f}"
    return line


def _confusion(confusion: dict[str, dict[str, int]]):
    from rich.table import Table

    columns = sorted({c for row in confusion.values() for c in row})
    table = Table(
        title="entities by type (rows: gold, columns: predicted)", show_edge=False, header_style="bold"
    )
    table.add_column("")
    for name in columns:
        table.add_column(name, justify="right")
    for name, row in confusion.items():
        table.add_row(name, *[str(row.get(c, 0)) for c in columns], style=None)
    return table
