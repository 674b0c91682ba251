"""Train clearpipe's named-entity tagger on CoNLL-2003 (English; PER, ORG, LOC, MISC).

Trains on `train.txt`, keeps the epoch with the best entity F1 on `valid.txt`, and scores
`test.txt` once at the end, with `clearpipe.training.ner.train`. The student is fine-tuned from
`minilm-l6` (all-MiniLM-L6-v2). When `mpnet-base` is installed (`clearpipe bases --install
mpnet-base`), a larger tagger is trained from it first, in its own folder, as the teacher whose
figures the student's are read against; without it that step is skipped. (Named-entity training
does not distil yet: the teacher is trained and scored, not learnt from.)

    python recipes/train_ner.py --work /tmp/ner                       # the full run
    python recipes/train_ner.py --work /tmp/ner-smoke --limit 200 --epochs 1   # a quick end-to-end check

Every step writes its own folder under --work and is skipped once its metrics.json exists; a step
that was interrupted resumes from its last epoch's checkpoint. The text is Reuters news (RCV1),
distributed for research: the model cards say so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clearpipe.bases import BASES, find
from clearpipe.training.ner.read import read_ner
from clearpipe.training.ner.train import train
from clearpipe.training.train import CHECKPOINTS, TrainConfig

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "valid", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "conll2003")
    parser.add_argument("--work", type=Path, default=Path("/tmp/clearpipe-ner"))
    parser.add_argument("--limit", type=int, help="Use the first N sentences of each split (a smoke run).")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--only",
        choices=("student", "teacher"),
        help="Run one step (the student first: it is the model shipped).",
    )
    args = parser.parse_args()
    files = data_files(args.data_dir, args.work, args.limit)
    figures = {}
    if args.only != "teacher":
        figures["student"] = step("student", "minilm-l6", files, args)
    teacher = find(BASES["mpnet-base"])
    if args.only == "student":
        pass
    elif teacher.source is None:
        print(f"teacher: skipped, mpnet-base is {teacher.where}", flush=True)
    else:
        figures["teacher"] = step("teacher", "mpnet-base", files, args)
    summary = {name: {s: m[s]["overall"] for s in ("validation", "test")} for name, m in figures.items()}
    (args.work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    for name, m in summary.items():
        print(f"{name}: validation entity F1 {m['validation']['f1']:.4f}, test {m['test']['f1']:.4f}")


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
            text = "\n\n".join(
                "\n".join(f"{w} {t}" for w, t in zip(s.words, s.tags, strict=True)) for s in sentences
            )
            partial = path.with_suffix(".partial")
            partial.write_text(text + "\n", encoding="utf-8")
            partial.rename(path)  # whole or absent, so an interrupted write is redone
    return files


def step(name: str, base: str, files: dict[str, Path], args: argparse.Namespace) -> dict:
    """Train one tagger into work/NAME, or read its figures when it is done already."""
    output = args.work / name
    done = output / "metrics.json"
    if done.is_file():
        print(f"{name}: done already ({output})", flush=True)
        return json.loads(done.read_text(encoding="utf-8"))
    print(f"{name}: training from {base} into {output}", flush=True)
    config = TrainConfig(
        data=str(files["train"]),
        validation=str(files["valid"]),
        test=str(files["test"]),
        base=base,
        output=str(output),
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        seed=args.seed,
        resume=(output / CHECKPOINTS).is_dir(),  # an interrupted run continues from its last epoch
    )
    return train(config).metrics


if __name__ == "__main__":
    main()
