"""Train clearpipe's embedded named-entity tagger on CoNLL-2003 (English; PER, ORG, LOC, MISC).

Three steps, each a `clearpipe.training.ner.train` run on `train.txt` that keeps the epoch with the
best entity F1 on `valid.txt` and scores `test.txt` once at the end:

1. `student`: all-MiniLM-L6-v2 (`minilm-l6`, 22M) fine-tuned alone, as `clearpipe train` does
   with its defaults: the figure the distilled model is read against.
2. `teacher`: all-mpnet-base-v2 (`mpnet-base`, 109M; `clearpipe bases --install mpnet-base`)
   fine-tuned the same way. Without it installed, this step and the next are skipped.
3. `distilled`: minilm-l6 again, learning each word's tags from the teacher's softened
   distribution as well as from the gold tags (`clearpipe train --teacher`, `ner.distill`).
The step with the best validation F1 among `student` and `distilled` is installed into
src/clearpipe/default_ner/ (float16 safetensors, its tokenizer and model card) as the model that
`clearpipe.pipeline("ner")` loads; the test split never chooses.

    python recipes/train_ner.py --work /tmp/ner                       # the full run
    python recipes/train_ner.py --work /tmp/ner --only teacher        # one step
    python recipes/train_ner.py --work /tmp/ner --install-only        # install a finished run
    python recipes/train_ner.py --work /tmp/ner-smoke --limit 200 --epochs 1 --no-install  # a quick check

Every step writes its own folder under --work and is skipped once its metrics.json exists; a step
that was interrupted resumes from its last epoch's checkpoint, and the teacher's word logits are
cached in the distilled step's folder. The text is Reuters news (RCV1), distributed for research:
the model cards say so.

An experiment, run only by `--only transfer` and never installed: `transfer`, step 3 with
unlabelled news as well (`--transfer-data`, AG News train by default, `recipes/news_transfer.py`),
every word of which the student learns from the teacher alone (`clearpipe train --unlabeled`).

An experiment, run only by `--only cased` and never installed: `cased`, step 3 on minilm-l6 given a
cased vocabulary (`recipes/cased_vocab.py`; capitals are the strongest cue a tagger has, and both
encoders on PyPI are uncased), its training file with `--lowercase-share` of the sentences
lowercased so that text written without capitals is still tagged. On 2026-12-07 it matched the
uncased `distilled` on CoNLL test (86.24 against 86.26) and fell behind it on lowercased text
(85.66); without lowercased sentences it gained half a point on test (86.73) and lost six on
lowercased text (79.88). docs/NER.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import cased_vocab
import news_transfer

from clearpipe.bases import BASES, find
from clearpipe.training.distill import Distillation
from clearpipe.training.ner.read import read_ner
from clearpipe.training.ner.train import train
from clearpipe.training.train import CHECKPOINTS, TrainConfig

REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "src" / "clearpipe" / "default_ner"
SPLITS = ("train", "valid", "test")
SHIPPED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md")
SHIPPED_FIGURES = ("metrics.json", "training_config.json", "trace.json")
STEPS = ("student", "teacher", "distilled", "cased", "transfer")
CANDIDATES = ("student", "distilled")  # the steps that may be installed (`cased`, `transfer`: experiments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "conll2003")
    parser.add_argument("--work", type=Path, default=Path("/tmp/clearpipe-ner"))
    parser.add_argument("--limit", type=int, help="Use the first N sentences of each split (a smoke run).")
    parser.add_argument("--epochs", type=float, default=3.0, help="The student's epochs.")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--teacher-epochs", type=float, default=2.0)
    parser.add_argument("--teacher-learning-rate", type=float, default=5e-5)
    parser.add_argument("--distilled-epochs", type=float, default=6.0)
    parser.add_argument("--distill-temperature", type=float, default=2.0)
    parser.add_argument("--distill-weight", type=float, default=0.5)
    parser.add_argument(
        "--lowercase-share",
        type=float,
        default=0.25,
        help="Share of the cased step's training sentences lowercased.",
    )
    parser.add_argument(
        "--transfer-data",
        type=Path,
        default=REPO.parent / "shared" / "data" / "agnews" / "train.tsv",
        help="The transfer step's unlabelled news (a TSV with a text column).",
    )
    parser.add_argument("--transfer-epochs", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--only",
        choices=STEPS,
        help="Run one step (the teacher must be done for 'distilled', 'cased' and 'transfer'; the last two run only so).",
    )
    parser.add_argument("--dest", type=Path, default=DEST)
    parser.add_argument("--install-only", action="store_true", help="Only install a finished --work run.")
    parser.add_argument("--no-install", action="store_true", help="Leave src/clearpipe/default_ner alone.")
    args = parser.parse_args()
    if not args.install_only:
        run_steps(args)
    figures = {
        name: _metrics(args.work / name) for name in STEPS if (args.work / name / "metrics.json").is_file()
    }
    summary = {name: {s: m[s]["overall"] for s in ("validation", "test")} for name, m in figures.items()}
    (args.work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    for name, m in summary.items():
        print(f"{name}: validation entity F1 {m['validation']['f1']:.4f}, test {m['test']['f1']:.4f}")
    candidates = [name for name in CANDIDATES if name in summary]
    if candidates and (args.install_only or (args.only is None and not args.no_install)):
        best = max(candidates, key=lambda name: summary[name]["validation"]["f1"])
        install(args.work / best, args.dest, summary)


def run_steps(args: argparse.Namespace) -> None:
    files = data_files(args.data_dir, args.work, args.limit)
    if args.only in (None, "student"):
        step("student", "minilm-l6", files, args, args.epochs, args.learning_rate)
    if args.only == "student":
        return
    if find(BASES["mpnet-base"]).source is None:
        print(f"teacher: skipped, mpnet-base is {find(BASES['mpnet-base']).where}", flush=True)
        return
    if args.only in (None, "teacher"):
        step("teacher", "mpnet-base", files, args, args.teacher_epochs, args.teacher_learning_rate)
    if args.only not in (None, "distilled", "cased", "transfer"):
        return
    teacher = args.work / "teacher"
    if not (teacher / "metrics.json").is_file():
        raise SystemExit(
            f"{args.only or 'distilled'}: the teacher in {teacher} is not trained yet (--only teacher)"
        )
    distillation = Distillation((str(teacher),), args.distill_temperature, args.distill_weight)
    if args.only in (None, "distilled"):
        step("distilled", "minilm-l6", files, args, args.distilled_epochs, args.learning_rate, distillation)
    if args.only == "transfer":
        news = transfer_rows(args.transfer_data, args.work / "data", args.limit)
        step(
            "transfer", "minilm-l6", files, args, args.transfer_epochs, args.learning_rate, distillation, news
        )
    if args.only == "cased":
        base = cased_base(args.work / "minilm-cased")
        mixed = {**files, "train": lowercased(files["train"], args.lowercase_share, args.seed, args.work)}
        step("cased", str(base), mixed, args, args.distilled_epochs, args.learning_rate, distillation)


def transfer_rows(tsv: Path, folder: Path, limit: int | None) -> Path:
    """`tsv`'s texts as CoNLL-style tokens (`recipes/news_transfer.py`), written once under `folder`;
    with `limit`, its first rows only (a smoke run)."""
    path = folder / f"{tsv.parent.name}-{tsv.stem}-transfer{'' if limit is None else f'-{limit}'}.jsonl"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        rows = news_transfer.write(tsv, path, limit=limit)
        print(f"transfer: {rows} unlabelled rows of {tsv} in {path}", flush=True)
    return path


def cased_base(folder: Path) -> Path:
    """minilm-l6 with a cased vocabulary (`recipes/cased_vocab.py`, its defaults), built once."""
    if not (folder / "cased_vocab.json").is_file():
        added = cased_vocab.make(Path(find(BASES["minilm-l6"]).source), folder)
        print(f"cased: {added} cased entries added to minilm-l6's vocabulary in {folder}", flush=True)
    return folder


def lowercased(train: Path, share: float, seed: int, work: Path) -> Path:
    """`train` with `share` of its sentences (drawn with `seed`) written in lower case, once, under
    work/data/conll2003/ (the folder name tells the card the data's terms).

    A cased tagger trained on cased text only learns that a name starts with a capital, and then
    misses names in text typed without them; lowercasing some of its sentences keeps it usable there
    (Mayhew et al., 2019, "NER and POS when nothing is capitalized"). The uncased teacher gives
    a lowercased sentence the same logits, so distillation is unchanged."""
    path = work / "data" / "conll2003" / f"{train.stem}-lower{round(share * 100)}.txt"
    if path.is_file():
        return path
    rng = random.Random(seed)
    sentences = [
        ([w.lower() for w in s.words] if rng.random() < share else list(s.words), s.tags)
        for s in read_ner(train).sentences
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_conll(path, sentences)
    return path


def write_conll(path: Path, sentences: list[tuple[Sequence[str], Sequence[str]]]) -> None:
    """(words, tags) per sentence as CoNLL columns, whole or absent (an interrupted write is redone)."""
    text = "\n\n".join(
        "\n".join(f"{w} {t}" for w, t in zip(words, tags, strict=True)) for words, tags in sentences
    )
    partial = path.with_suffix(".partial")
    partial.write_text(text + "\n", encoding="utf-8")
    partial.rename(path)


def data_files(data_dir: Path, work: Path, limit: int | None) -> dict[str, Path]:
    """The CoNLL files to train on: the shared ones, or with `limit` their first sentences
    written once under work/data/conll2003/ (the folder name tells the card the data's terms)."""
    if limit is None:
        return {split: data_dir / f"{split}.txt" for split in SPLITS}
    folder = work / "data" / "conll2003"
    folder.mkdir(parents=True, exist_ok=True)
    files = {split: folder / f"{split}.txt" for split in SPLITS}
    for split, path in files.items():
        if not path.is_file():
            sentences = read_ner(data_dir / f"{split}.txt").sentences[:limit]
            write_conll(path, [(s.words, s.tags) for s in sentences])
    return files


def step(
    name: str,
    base: str,
    files: dict[str, Path],
    args: argparse.Namespace,
    epochs: float,
    learning_rate: float,
    distillation: Distillation | None = None,
    unlabeled: Path | None = None,
) -> dict:
    """Train one tagger into work/NAME, or read its figures when it is done already."""
    output = args.work / name
    if (output / "metrics.json").is_file():
        print(f"{name}: done already ({output})", flush=True)
        return _metrics(output)
    print(f"{name}: training from {base} into {output}", flush=True)
    config = TrainConfig(
        data=str(files["train"]),
        validation=str(files["valid"]),
        test=str(files["test"]),
        base=base,
        output=str(output),
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=args.batch_size,
        seed=args.seed,
        distillation=distillation,
        unlabeled=None if unlabeled is None else str(unlabeled),
        save_dtype="float32" if name == "teacher" else "float16",  # the figures are the shipped weights'
        # An interrupted run continues from its last epoch (a teacher's cached logits count too).
        resume=(output / CHECKPOINTS).is_dir() or (output / "teacher_logits").is_dir(),
    )
    return train(config).metrics


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


def install(work: Path, dest: Path, summary: dict) -> None:
    """Copy the chosen run into the package, its weights in float16 (half the size; the config
    says float32, so every loader widens them, as for the default sentiment model)."""
    import torch
    from safetensors.torch import load_file, save_file

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in (*SHIPPED, *SHIPPED_FIGURES):
        if name != "model.safetensors":
            shutil.copy2(work / name, dest / name)
    weights = load_file(work / "model.safetensors")
    save_file(
        {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()},
        dest / "model.safetensors",
        metadata={"format": "pt"},
    )
    lines = [
        f"- `{name}`: validation entity F1 {m['validation']['f1']:.4f}, test {m['test']['f1']:.4f}"
        for name, m in summary.items()
    ]
    with (dest / "README.md").open("a", encoding="utf-8") as card:
        card.write(
            "\n## How this model was made\n\n"
            f"`recipes/train_ner.py` in the clearpipe repository; this is its `{work.name}` step, chosen "
            "by validation F1. Every step of that run:\n\n" + "\n".join(lines) + "\n"
        )
    print(f"installed {work} into {dest}", flush=True)


if __name__ == "__main__":
    main()
