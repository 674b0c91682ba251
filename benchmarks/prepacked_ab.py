"""float32 linear layers packed for oneDNN against plain `nn.Linear` (MKL), on this CPU.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/prepacked_ab.py [--data sst2 agnews ner]
        [--rounds 4] [--threads 2]

`clearpipe.engine.prepacked` packs float32 weights only on CPUs with AVX-512, where oneDNN's
kernel ran twice as fast as MKL's (AMD Zen 4); on an AMD Zen 3 (AVX2) it was the slower one. This
script measures the choice on the machine it runs on: the embedded model on SST-2 test (872
texts) and 600 AG News test texts, and the embedded NER model on 1,000 CoNLL-2003 test sentences,
each loaded once in float32, then `--rounds` rounds that each time one pass with plain layers
and one with packed layers (whatever the CPU), alternating so that a busy machine's drift hits
both alike. Printed: every pass's texts/s and the best of each, and the CPU.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT / "shared" / "data",
)
TABLES = {"sst2": ("sst2/test.tsv", "sentence", 872), "agnews": ("agnews/test.tsv", "text", 600)}


def workload(name: str) -> tuple[object, list[str], Callable[[object], object]]:
    """The float32 model, its texts and the stage-2 pass to time, for one `--data` name."""
    import clearpipe
    from clearpipe.engine import loop

    if name == "ner":
        from ner_speed import read_texts

        texts = read_texts(DATA / "conll2003" / "test.txt", 1000)
        model = clearpipe.load("ner", dtype="float32")
        return model, texts, model.logits
    path, column, count = TABLES[name]
    with (DATA / path).open(encoding="utf-8") as handle:
        texts = [row[column] for row in csv.DictReader(handle, delimiter="\t")][:count]
    model = clearpipe.load(dtype="float32")
    return model, texts, lambda tokenized: loop.run(tokenized, model.runner, model.budget)


def measure(name: str, rounds: int) -> dict[str, list[float]]:
    """Texts/s of each pass, plain and packed, over `rounds` alternating rounds."""
    import torch

    from clearpipe.engine import linears, prepacked

    model, texts, run = workload(name)
    tokenized = model.tokenize(texts)
    speeds: dict[str, list[float]] = {"plain": [], "packed": []}
    for _ in range(rounds):
        for mode in speeds:
            linears.restore(model.model)
            if mode == "packed":  # whatever prepack_model would choose on this CPU
                linears.replace(model.model, torch.nn.Linear, prepacked.PrepackedLinear, exact=True)
            run(model.tokenize(texts[:64]))  # packs the weights, warms the kernels
            started = time.perf_counter()
            run(tokenized)
            speeds[mode].append(len(texts) / (time.perf_counter() - started))
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", nargs="+", default=["sst2", "agnews", "ner"], choices=("sst2", "agnews", "ner")
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from clearpipe.engine import cpu

    torch.set_num_threads(args.threads)
    for name in args.data:
        speeds = measure(name, args.rounds)
        passes = ", ".join(
            f"{mode} {' '.join(f'{s:.0f}' for s in values)}" for mode, values in speeds.items()
        )
        best = {mode: max(values) for mode, values in speeds.items()}
        print(
            f"{name}: {passes}; best plain {best['plain']:.0f}, packed {best['packed']:.0f} "
            f"({best['plain'] / best['packed']:.2f}x)",
            flush=True,
        )
    print(f"CPU: AVX-512 {'yes' if cpu.avx512() else 'no'}; torch {torch.__version__}")


if __name__ == "__main__":
    main()
