"""`clearpipe classify`: label a few texts given as arguments or on stdin."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from clearpipe.cli import entities, options, startup
from clearpipe.cli.loading import LoadFlags, from_flags


def classify(
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Texts to classify. Read from stdin, one per line, when absent."),
    ] = None,
    model: options.Model = None,
    top_k: options.TopK = None,
    max_length: options.MaxLength = None,
    batch_size: options.BatchSize = None,
    max_tokens: options.MaxTokens = None,
    device: options.Device = "auto",
    dtype: options.Dtype = "auto",
    recheck: options.Recheck = True,
    long_text: options.LongText = "truncate",
    calibrated: options.Calibrated = True,
    min_score: options.MinScore = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON result per line, in input order.")
    ] = False,
    use_lite: options.Lite = False,
    labels: options.Labels = None,
    template: options.Template = None,
    multi_label: options.MultiLabel = False,
    aggregation: options.Aggregation = None,
) -> None:
    """Classify TEXT arguments (or stdin lines) and print label, score and text. An empty text
    gets no label and no score (null with --json), and stderr says how many there were."""
    if not texts:
        texts = sys.stdin.read().splitlines()
    k = options.parse_top_k(top_k)
    if labels is not None:
        _zero_shot(
            texts, labels, template, multi_label, from_flags(LoadFlags, locals(), lite=use_lite), as_json, k
        )
        return
    clf = from_flags(LoadFlags, locals(), lite=use_lite).load()
    startup.resume_collector()
    aggregation = entities.check_aggregation(aggregation, clf)
    if entities.is_entities(clf):  # a token-classification model: the texts' named entities
        entities.refuse(**{"--top-k": top_k is not None})
        entities.classify(clf, list(texts), as_json, aggregation)
        return
    results = clf(list(texts), top_k=k)
    results = _without_empty(texts, results)
    if as_json:
        for result in results:
            print(json.dumps(result, ensure_ascii=False))
        return
    _print_table(texts, results)


def _zero_shot(
    texts: list[str], labels: str, template: str | None, multi_label: bool, flags: LoadFlags, as_json: bool, k
) -> None:
    """`classify --labels`: the texts against labels given now (`clearpipe.zeroshot`)."""
    from clearpipe.cli import zero_shot
    from clearpipe.postprocess import BEST
    from clearpipe.zeroshot import parse_labels

    zero_shot.check_flags(flags)
    candidates = parse_labels(labels)
    clf = zero_shot.load(flags)
    startup.resume_collector()
    outputs = clf.predict([t for t in texts if t.strip()], candidates, template, multi_label).to_output()
    answers = iter(outputs)
    if as_json:  # transformers' zero-shot contract: {"sequence", "labels", "scores"} per text
        for text in texts:
            print(json.dumps(next(answers) if text.strip() else None, ensure_ascii=False))
        return
    keep = 1 if k is BEST else None if k is None else k
    results = []
    for text in texts:
        if not text.strip():
            results.append([])
            continue
        answer = next(answers)
        ranked = [
            {"label": label, "score": score}
            for label, score in zip(answer["labels"], answer["scores"], strict=True)
        ]
        results.append(ranked[:keep] if keep else ranked)
    _print_table(texts, _without_empty(texts, results))


def _without_empty(texts: list[str], results: list) -> list:
    """The results, with those of empty texts blanked (the model's guess on nothing means nothing):
    `{"label": None, "score": None}`, or `[]` for a ranked list; stderr says how many."""
    empty = {i for i, text in enumerate(texts) if not text.strip()}
    if empty:
        print(f"{len(empty)} of {len(texts)} texts were empty: no label or score", file=sys.stderr)
    blank = {"label": None, "score": None}
    return [(blank if isinstance(r, dict) else []) if i in empty else r for i, r in enumerate(results)]


def _print_table(texts: list[str], results: list) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = [[result] if isinstance(result, dict) else result for result in results]
    # Multi-label thresholds and --min-score add a decision column; plain results keep three.
    decisions = any("applies" in r or "decided" in r for ranked in rows for r in ranked)
    table = Table(show_edge=False, header_style="bold")
    for column in ("label", "score", *(["decision"] if decisions else []), "text"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for text, ranked in zip(texts, rows, strict=True):
        table.add_row(
            "\n".join(r["label"] or "" for r in ranked),
            "\n".join("" if r["score"] is None else f"{r['score']:.4f}" for r in ranked),
            *(["\n".join(_decision(r) for r in ranked)] if decisions else []),
            "(empty)" if not text.strip() else text if len(text) <= 200 else text[:197] + "...",
        )
    Console(soft_wrap=False).print(table)


def _decision(result: dict) -> str:
    if result.get("decided") is False:
        return "not sure"
    if "applies" in result:
        return "applies" if result["applies"] else "no"
    return "decided" if result.get("decided") else ""
