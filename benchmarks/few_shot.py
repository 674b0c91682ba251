"""Few-shot training: SetFit against plain fine-tuning and zero-shot, on SST-2 and AG News.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/few_shot.py [--k 8,64] [--seeds 5]
        [--datasets sst2,agnews] [--methods setfit,finetune,zeroshot] [--base minilm-l6]
        [--sst2-pool sentences] [--results benchmarks/results/few_shot_runs.jsonl]
        [--teacher-base mpnet-base] [--unlabeled-rows 6000] [--work DIR]

For each dataset, k rows per class and seed, k rows per class are sampled from the train split
(the seed picks them), written to a table, and trained on by `clearpipe.training.train` with
`method="setfit"` or `"finetune"` (every other setting at its default, as `clearpipe train`
runs); the saved model is scored once on the full test split (SST-2 872 rows, AG News 7,600):
accuracy and ECE (15 bins, of the calibrated scores), and the run's wall time. Zero-shot (the
datasets' label names, clearpipe's default template) needs no rows and runs once per dataset.

SST-2's train split is GLUE's: the treebank's training sentences and every phrase of their parse
trees (60,614 rows, median 7 words, many of one to three: "favored", "crime expertly"), while the
test split and the published few-shot figures (SetFit's `SetFit/sst2`) are whole sentences.
`--sst2-pool sentences` (the default) samples from the rows that are no part of another train or
dev row, the sentences (6,884 rows); `--sst2-pool phrases` samples from every row, as runs before
2026-12-07 did. A sample of phrases can teach length instead of sentiment: one mpnet-base seed
drew eight whole negative sentences and eight positive fragments, and its model called 79% of
the test sentences negative (50.8% accuracy) while scoring 87.5% on its own folds.

`--methods distilled` adds unlabelled text: a SetFit teacher on `--teacher-base` (mpnet-base)
is trained on the same k rows per class, then the student (`--base`) is fine-tuned on those rows
plus `--unlabeled-rows` texts of the train split (their labels unread; SST-2's from its whole
sentences), learning the unlabelled ones from the teacher alone: `clearpipe train rows --base
mpnet-base -o T`, then `clearpipe train rows --teacher T --unlabeled texts`. The teachers are
kept under `--work` so an interrupted sweep reuses them; the run records the teacher's own test
accuracy and both steps' times.

Each finished run is appended to `--results` as one JSON line and skipped when the script runs
again, so a long sweep survives interruption; the summary (mean and standard deviation over
seeds) is printed from that file.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NAMES = {"sst2": ["negative", "positive"], "agnews": ["World", "Sports", "Business", "Sci/Tech"]}
TEXT = {"sst2": "sentence", "agnews": "text"}


def read(dataset: str, split: str) -> tuple[list[str], list[str]]:
    """Texts and label names of a split, read without CSV quoting (AG News has raw quotes)."""
    import pandas as pd

    frame = pd.read_csv(
        DATA / dataset / f"{split}.tsv", sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str
    )
    names = NAMES[dataset]
    labels = [names[int(v)] if dataset == "sst2" else v for v in frame["label"]]
    return frame[TEXT[dataset]].tolist(), labels


@functools.cache
def sst2_sentences() -> frozenset[str]:
    """SST-2 train rows that are whole sentences: no part of a longer train or dev row (every
    phrase of the treebank is a contiguous part of its sentence, which sits in train or dev)."""
    texts = [t.strip() for split in ("train", "dev") for t in read("sst2", split)[0]]
    everything = "\n" + "\n".join(texts) + "\n"
    copies = Counter(texts)  # a row met only as itself (and its duplicates) is a whole sentence
    return frozenset(t for t, n in copies.items() if everything.count(t) == n)


def train_pool(dataset: str, pool: str) -> tuple[list[str], list[str]]:
    """The train split's texts and labels that rows are drawn from: for SST-2 with pool
    "sentences", its whole sentences only."""
    texts, labels = read(dataset, "train")
    if dataset == "sst2" and pool == "sentences":
        whole = sst2_sentences()
        kept = [i for i, t in enumerate(texts) if t.strip() in whole]
        texts, labels = [texts[i] for i in kept], [labels[i] for i in kept]
    return texts, labels


def sample(dataset: str, k: int, seed: int, pool: str = "sentences") -> list[tuple[str, str]]:
    """k rows per class from the train split (for SST-2 with pool "sentences", from its whole
    sentences), drawn by `seed`."""
    texts, labels = train_pool(dataset, pool)
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)
    rows = []
    for name in NAMES[dataset]:
        picked = rng.choice(np.flatnonzero(y == name), size=k, replace=False)
        rows += [(texts[i], name) for i in picked]
    return rows


def write_table(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(["text", "label"])
        writer.writerows((text.replace("\t", " "), label) for text, label in rows)
    return path


def test_table(dataset: str, folder: Path) -> Path:
    texts, labels = read(dataset, "test")
    return write_table(folder / f"{dataset}_test.tsv", list(zip(texts, labels, strict=True)))


def trained(dataset: str, k: int, seed: int, method: str, base: str | None, folder: Path, pool: str) -> dict:
    """One training run by `clearpipe train`'s own function, scored on the full test split."""
    from clearpipe.training.train import TrainConfig, train

    data = write_table(folder / f"{dataset}_{k}_{seed}.tsv", sample(dataset, k, seed, pool))
    started = time.perf_counter()
    result = train(
        TrainConfig(
            data=str(data),
            test=str(test_table(dataset, folder)),
            output=str(folder / f"model_{dataset}_{k}_{seed}_{method}"),
            base=base,
            method=method,
            seed=seed,
        )
    )
    seconds = time.perf_counter() - started
    test = result.metrics["test"]
    return {"accuracy": test["accuracy"], "ece": test["ece"], "seconds": round(seconds, 1)}


def other_rows(dataset: str, rows: list[tuple[str, str]], n: int, seed: int) -> list[tuple[str, str]]:
    """n rows of the train pool (SST-2: whole sentences) whose texts are not among `rows`, drawn
    by a generator seeded with `seed`: the unlabelled texts here, the selection rows of
    `few_shot_sweep.py`."""
    texts, labels = train_pool(dataset, "sentences")
    labelled = {text for text, _ in rows}
    free = [i for i, t in enumerate(texts) if t not in labelled]
    picked = np.random.default_rng(seed).choice(len(free), size=min(n, len(free)), replace=False)
    return [(texts[free[i]], labels[free[i]]) for i in picked]


def unlabeled_table(dataset: str, rows: list[tuple[str, str]], n: int, seed: int, folder: Path) -> Path:
    """n train texts that are not among the labelled rows (SST-2: whole sentences), drawn by seed;
    written with a placeholder label column, which `--unlabeled` ignores."""
    texts = [text for text, _ in other_rows(dataset, rows, n, 1000 + seed)]
    return write_table(folder / f"unlabeled_{dataset}_{seed}_{n}.tsv", [(t, "-") for t in texts])


def distilled(
    dataset: str, k: int, seed: int, base: str | None, folder: Path, options: argparse.Namespace
) -> dict:
    """A SetFit teacher on `options.teacher_base` from the k rows per class, then the student
    fine-tuned on the same rows and `options.unlabeled_rows` unlabelled train texts with it."""
    from clearpipe.training.distill import Distillation
    from clearpipe.training.train import TrainConfig, train

    rows = sample(dataset, k, seed, options.sst2_pool)
    data = write_table(folder / f"{dataset}_{k}_{seed}.tsv", rows)
    test = test_table(dataset, folder)
    teacher = options.work / f"teacher_{options.teacher_base}_{dataset}_{k}_{seed}_{options.sst2_pool}"
    teacher_seconds = None  # a teacher kept from an earlier run: its time is not this run's
    if not (teacher / "metrics.json").is_file():
        started = time.perf_counter()
        train(
            TrainConfig(
                data=str(data),
                test=str(test),
                output=str(teacher),
                base=options.teacher_base,
                method="setfit",
                seed=seed,
            )
        )
        teacher_seconds = round(time.perf_counter() - started, 1)
    teacher_test = json.loads((teacher / "metrics.json").read_text())["test"]
    started = time.perf_counter()
    result = train(
        TrainConfig(
            data=str(data),
            test=str(test),
            output=str(folder / f"model_{dataset}_{k}_{seed}_distilled"),
            base=base,
            method="finetune",
            seed=seed,
            distillation=Distillation(teachers=(str(teacher),)),
            unlabeled=str(unlabeled_table(dataset, rows, options.unlabeled_rows, seed, folder)),
        )
    )
    test = result.metrics["test"]
    return {
        "accuracy": test["accuracy"],
        "ece": test["ece"],
        "seconds": round(time.perf_counter() - started, 1),
        "teacher": {
            "base": options.teacher_base,
            "accuracy": teacher_test["accuracy"],
            "ece": teacher_test["ece"],
            "seconds": teacher_seconds,
        },
        "unlabeled_rows": options.unlabeled_rows,
    }


def zero_shot(dataset: str, base: str | None) -> dict:
    """The datasets' label names with the default template and encoder."""
    from clearpipe.training.metrics import expected_calibration_error
    from clearpipe.zeroshot import load_zero_shot

    texts, labels = read(dataset, "test")
    started = time.perf_counter()
    clf = load_zero_shot(base)
    predictions = clf.predict(texts, NAMES[dataset])
    seconds = time.perf_counter() - started
    scores = np.asarray(predictions.scores)  # (N, labels) in the labels' order
    y = np.asarray([NAMES[dataset].index(v) for v in labels])
    right = scores.argmax(1) == y
    return {
        "accuracy": float(right.mean()),
        "ece": float(expected_calibration_error(scores.max(1), right)),
        "seconds": round(seconds, 1),
    }


def done(path: Path) -> dict[tuple, dict]:
    if not path.is_file():
        return {}
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["dataset"], r["k"], r["seed"], r["method"], r["base"], pool_of(r)): r for r in runs}


def pool_of(run: dict) -> str:
    """Which rows a run sampled from: SST-2 runs written before the pool was recorded used all."""
    if run["dataset"] != "sst2" or run["method"] == "zeroshot":
        return "-"
    return run.get("pool", "phrases")


def summary(runs: list[dict]) -> None:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["base"], run["dataset"], pool_of(run), run["k"], run["method"]), []).append(
            run
        )
    print(
        "\n| base | dataset | pool | k/class | method | seeds | accuracy (mean ± sd) | ECE (mean ± sd) | s per run |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (base, dataset, pool, k, method), group in sorted(groups.items(), key=str):
        acc = [r["accuracy"] for r in group]
        ece = [r["ece"] for r in group]
        sd = statistics.stdev if len(group) > 1 else (lambda _: 0.0)
        print(
            f"| {base} | {dataset} | {pool} | {k if method != 'zeroshot' else '-'} | {method} | {len(group)} | "
            f"{np.mean(acc):.2%} ± {sd(acc):.2%} | {np.mean(ece):.2%} ± {sd(ece):.2%} | "
            f"{np.mean([r['seconds'] for r in group]):.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="sst2,agnews")
    parser.add_argument("--k", default="8,64")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default="setfit,finetune,zeroshot")
    parser.add_argument("--base", default=None, help="a named base or folder; default minilm-l6")
    parser.add_argument(
        "--sst2-pool",
        choices=("sentences", "phrases"),
        default="sentences",
        help="SST-2 samples from whole sentences, or from every row (phrases too)",
    )
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/few_shot_runs.jsonl"))
    parser.add_argument("--teacher-base", default="mpnet-base", help="distilled: the SetFit teacher's base")
    parser.add_argument("--unlabeled-rows", type=int, default=6000, help="distilled: unlabelled train texts")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path.home() / ".cache" / "clearpipe" / "few-shot-teachers",
        help="distilled: where teachers are kept",
    )
    args = parser.parse_args()
    base_name = args.base or "minilm-l6"
    finished = done(args.results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    plan = []
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            if method == "zeroshot":
                plan.append((dataset, 0, 0, method))
                continue
            for k in (int(v) for v in args.k.split(",")):
                plan += [(dataset, k, seed, method) for seed in range(args.seeds)]
    for dataset, k, seed, method in plan:
        pool = args.sst2_pool if dataset == "sst2" and method != "zeroshot" else "-"
        key = (dataset, k, seed, method, base_name, pool)
        if key in finished:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            if method == "zeroshot":
                figures = zero_shot(dataset, args.base)
            elif method == "distilled":
                figures = distilled(dataset, k, seed, args.base, Path(tmp), args)
            else:
                figures = trained(dataset, k, seed, method, args.base, Path(tmp), args.sst2_pool)
        run = {"dataset": dataset, "k": k, "seed": seed, "method": method, "base": base_name, **figures}
        if pool != "-":
            run["pool"] = pool
        print(json.dumps(run), flush=True)
        with args.results.open("a", encoding="utf-8") as f:
            f.write(json.dumps(run) + "\n")
        finished[key] = run
    summary([r for r in finished.values() if r["base"] == base_name])


if __name__ == "__main__":
    main()
