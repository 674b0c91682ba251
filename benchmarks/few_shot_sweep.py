"""Few-shot encoder tuning: SetFit's learning rate and pair count, chosen on held-out train rows.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/few_shot_sweep.py [--datasets sst2]
        [--k 8] [--seeds 3] [--grid 2e-5:20,5e-5:20,1e-4:20,2e-5:40] [--select 500]
        [--results FILE]

`clearpipe train --method setfit` tunes the encoder with SetFit's published settings (AdamW at
2e-5, 20 pairs of each kind per row, one epoch). Those were set for 110M-parameter bases;
whether the 22M all-MiniLM-L6-v2 wants more steps or a larger rate is measured here. For each
(learning rate, iterations) of `--grid` and each seed, the encoder is tuned on k rows per class
(drawn as `benchmarks/few_shot.py` draws them), every candidate head of `clearpipe train` is
fitted, and each head is scored on `--select` other rows of the train pool (never the rows
trained on: the selection set) and on the full test split. A setting is judged by the selection
rows alone; the test figures are reported beside them, not used to choose.

One JSON line per (dataset, k, seed, setting) is appended to `--results` and skipped when the
script runs again.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from few_shot import NAMES, other_rows, read, sample  # benchmarks/ is the script's directory


def run(dataset: str, k: int, seed: int, rate: float, iterations: int, n_select: int) -> dict:
    """One seed and setting: the encoder tuned, every head scored on the selection rows and test."""
    from transformers import AutoTokenizer

    from clearpipe import bases
    from clearpipe.loading import resolve_source, uses_token_type_ids
    from clearpipe.preprocess import tokenize
    from clearpipe.training import setfit
    from clearpipe.training.data import Split
    from clearpipe.training.train import bf16_supported

    names = sorted(NAMES[dataset])  # `clearpipe train` numbers labels in sorted order
    rows = sample(dataset, k, seed)
    split = Split(
        "train", dataset, [t for t, _ in rows], [names.index(n) for _, n in rows], list(range(len(rows)))
    )
    settings = replace(
        setfit.SetFitSettings(bf16=bf16_supported()), learning_rate=rate, iterations=iterations
    )
    source = resolve_source(bases.resolve_base("minilm-l6"))
    started = time.perf_counter()
    tuned = setfit.train_split(source, split, names, 256, settings, seed)
    seconds = time.perf_counter() - started
    fitted = setfit.heads(tuned, split.labels, len(names), settings, seed)
    tokenizer = AutoTokenizer.from_pretrained(source)
    use_types = uses_token_type_ids(tuned.encoder, tokenizer)
    pad = tokenizer.pad_token_id or 0
    scored = {}
    # the selection rows: never trained on, and the same for every setting of one seed
    selection = other_rows(dataset, rows, n_select, 10_000 + seed)
    for part, (texts, labels) in (
        ("select", ([t for t, _ in selection], [n for _, n in selection])),
        ("test", read(dataset, "test")),
    ):
        x = setfit.embed(
            tuned.encoder, tokenize(tokenizer, texts, 256, use_types), pad, tokenizer.padding_side
        )
        y = np.asarray([names.index(n) for n in labels])
        scored[part] = {
            str(c): round(float(((x @ w.T + b).argmax(1) == y).mean()), 4) for c, (w, b) in fitted.items()
        }
    return {"seconds": round(seconds, 1), "steps": tuned.steps, "loss": round(tuned.loss, 4), **scored}


def summary(lines: list[dict]) -> None:
    """Mean over seeds per setting: the best head on the selection rows, and the plain head."""
    settings = sorted({(r["dataset"], r["k"], r["learning_rate"], r["iterations"]) for r in lines})
    print("dataset k rate iterations seeds | select plain / best-any | test plain / best-any")
    for dataset, k, rate, iterations in settings:
        runs = [
            r
            for r in lines
            if (r["dataset"], r["k"], r["learning_rate"], r["iterations"]) == (dataset, k, rate, iterations)
        ]
        plain_s = np.mean([r["select"]["None"] for r in runs])
        plain_t = np.mean([r["test"]["None"] for r in runs])
        best_s = np.mean([max(r["select"].values()) for r in runs])
        # the test figure of the head that scored best on the selection rows, per seed
        best_t = np.mean([r["test"][max(r["select"], key=r["select"].get)] for r in runs])
        print(
            f"{dataset} {k} {rate:g} {iterations} {len(runs)} | {plain_s:.4f} / {best_s:.4f} |"
            f" {plain_t:.4f} / {best_t:.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="sst2")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--grid", default="2e-5:20,5e-5:20,1e-4:20,2e-5:40")
    parser.add_argument("--select", type=int, default=500)
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/few_shot_sweep.jsonl"))
    parser.add_argument("--summary", action="store_true", help="print the table of --results and stop")
    args = parser.parse_args()
    lines = []
    if args.results.exists():
        lines = [json.loads(line) for line in args.results.read_text().splitlines()]
    if args.summary:
        summary(lines)
        return
    finished = {(r["dataset"], r["k"], r["seed"], r["learning_rate"], r["iterations"]) for r in lines}
    grid = [(float(a), int(b)) for a, b in (cell.split(":") for cell in args.grid.split(","))]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets.split(","):
        for seed in range(args.seeds):
            for rate, iterations in grid:
                if (dataset, args.k, seed, rate, iterations) in finished:
                    continue
                found = run(dataset, args.k, seed, rate, iterations, args.select)
                line = {
                    "dataset": dataset,
                    "k": args.k,
                    "seed": seed,
                    "learning_rate": rate,
                    "iterations": iterations,
                    **found,
                }
                print(json.dumps(line), flush=True)
                with args.results.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
                lines.append(line)
    summary(lines)


if __name__ == "__main__":
    main()
