"""Named-entity speed: clearpipe's TokenClassifier against transformers' token-classification pipeline.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/ner_speed.py [--model DIR] [--sentences N]
        [--threads 2] [--repeat 3] [--strategy first|simple] [--batch-sizes 1 8 32 64]
        [--dtypes auto float32 bfloat16] [--exports DIR ...] [--data FILE] [--json FILE]

CoNLL-2003 test sentences (`--data`, default `shared/data/conll2003/test.txt`, read by
`clearpipe.training.ner.read`), each one's words joined by single spaces into a text; `--sentences N`
of them (a seeded sample; default all 3,453). In one process, with `--threads` threads (2 by
default, the targets' setup; 0: torch's default), on the same model:

* clearpipe: `clearpipe.load(model, dtype=D)` for each `--dtypes` D ("auto", clearpipe's default,
  then float32 and bfloat16 where they differ from what auto chose), called once on all texts
  (the engine batches them by its token budget);
* with `--exports`, folders `clearpipe export` wrote from the same model (e.g. `--format onnx
  --quantize int8`), loaded by `clearpipe.load` and called the same way;
* the rival: `transformers.pipeline("token-classification", model=..., aggregation_strategy=...)`
  in fp32 and in bf16 (`dtype=torch.bfloat16`), called on the list of texts with `batch_size=B`
  for every `--batch-sizes` B: its strongest configuration is whichever of these is fastest here.

Both sides aggregate with `--strategy` (transformers' "first" or "simple"; clearpipe's own default,
"word", is not a strategy transformers has). Every configuration is warmed up on 64 texts, then the
configurations take turns for `--repeat` passes (so that a busy machine's drift hits all alike) and
each one's fastest pass counts. Printed: sentences/s per configuration, its ratio to the fastest
rival configuration, and its agreement with transformers in fp32 (at the smallest batch size): the
share of sentences whose entities, as (entity_group, start, end), are identical (the target: at
least 99.5%); then the CPU and the torch and transformers versions. Loading clearpipe tunes glibc's
malloc for the whole process (`clearpipe.engine.allocator`), so the rival's passes run with it too.

Without `--model`: the embedded NER model (`src/clearpipe/default_ner/`) when there is one, else
all-MiniLM-L6-v2 (`clearpipe.bases.resolve_base(None)`) under a seeded random 9-label IOB2 head, which
the output says: speed does not depend on trained weights, and agreement still checks the arithmetic.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT / "shared" / "data",
)
DEFAULT_NER = ROOT / "src" / "clearpipe" / "default_ner"
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
AGREEMENT_TARGET = 0.995
WARMUP_TEXTS = 64

Entities = list[list[dict]]


def read_texts(path: Path, sentences: int | None) -> list[str]:
    """Each sentence's words joined by single spaces; `sentences` of them, a seeded sample in file
    order (None: all)."""
    from clearpipe.training.ner.read import read_ner

    texts = [" ".join(s.words) for s in read_ner(path).sentences]
    if sentences is not None and sentences < len(texts):
        texts = [texts[i] for i in sorted(random.Random(0).sample(range(len(texts)), sentences))]
    return texts


def build_random_ner(base: str, folder: Path, seed: int = 0) -> Path:
    """`base`'s encoder under a random 9-label IOB2 head (seeded), saved to `folder`.

    The head is scaled so that labels are confident and vary from token to token, "O" favoured:
    agreement then measures arithmetic, not coin flips between labels a hair apart.
    """
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the head is new by design: no "newly initialized" notice
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            base,
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={label: i for i, label in enumerate(LABELS)},
            ignore_mismatched_sizes=True,
            dtype=torch.float32,
        )
    finally:
        logging.set_verbosity(verbosity)
    head = model.classifier  # (labels, hidden)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # Logits of spread about 3 on hidden states of RMS about 0.5; "O" ahead by 4.
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 6 / head.in_features**0.5)
        head.bias.zero_()
        head.bias[0] = 4.0
    model.eval().save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


def pick_model(model: str | None, scratch: Path) -> tuple[str, str, bool]:
    """The checkpoint to time, how to describe it, and whether its head is random."""
    if model is not None:
        return model, model, False
    if DEFAULT_NER.is_dir():
        return str(DEFAULT_NER), f"the embedded NER model ({DEFAULT_NER})", False
    from clearpipe.bases import resolve_base

    base = resolve_base(None)
    folder = build_random_ner(base, scratch / "random-ner")
    return str(folder), f"all-MiniLM-L6-v2 ({base}) under a random 9-label IOB2 head (seed 0)", True


# --- The configurations -----------------------------------------------------------------------
def clearpipe_configs(model: str, dtypes: list[str], strategy: str, threads: int) -> dict:
    """name -> (call on all texts, description) for each dtype; "auto" first, the explicit dtypes
    it resolved to skipped."""
    import clearpipe

    configs: dict = {}
    seen: set[str] = set()
    for dtype in dtypes:
        clf = clearpipe.load(model, dtype=dtype, threads=threads or None)
        resolved = clf.settings.dtype
        if resolved in seen:
            continue
        seen.add(resolved)
        clf.warmup()
        name = "clearpipe default" if dtype == "auto" else f"clearpipe {dtype}"
        call = _clearpipe_call(clf, strategy)
        configs[name] = (call, {"dtype": resolved, "batch_size": None, "rival": False})
    return configs


def export_configs(exports: list[str], strategy: str, threads: int) -> dict:
    """name -> (call, description) for folders `clearpipe export` wrote from the same model (ONNX
    or OpenVINO, float or int8), each loaded by `clearpipe.load` as users load it."""
    import clearpipe

    configs: dict = {}
    for folder in exports:
        clf = clearpipe.load(folder, threads=threads or None)
        clf.warmup()
        info = json.loads((Path(folder) / "clearpipe_export.json").read_text(encoding="utf-8"))
        kind = " ".join(str(info.get(k)) for k in ("format", "quantize") if info.get(k))
        name = f"clearpipe export {kind or Path(folder).name}"
        configs[name] = (_clearpipe_call(clf, strategy), {"dtype": kind, "batch_size": None, "rival": False})
    return configs


def _clearpipe_call(clf, strategy: str) -> Callable[[list[str]], Entities]:
    return lambda texts: clf(texts, aggregation_strategy=strategy)


def rival_configs(model: str, batch_sizes: list[int], strategy: str) -> dict:
    """name -> (call on all texts, description): transformers' pipeline in fp32 and bf16 at every
    batch size, each pipeline made once."""
    import torch
    from transformers import pipeline

    configs: dict = {}
    for dtype in ("float32", "bfloat16"):
        pipe = pipeline(
            "token-classification",
            model=model,
            device="cpu",
            dtype=getattr(torch, dtype),
            aggregation_strategy=strategy,
        )
        for batch_size in batch_sizes:
            call = _pipeline_call(pipe, batch_size)
            configs[f"pipeline {dtype} b{batch_size}"] = (
                call,
                {"dtype": dtype, "batch_size": batch_size, "rival": True},
            )
    return configs


def _pipeline_call(pipe, batch_size: int) -> Callable[[list[str]], Entities]:
    return lambda texts: pipe(texts, batch_size=batch_size)


def measure(configs: dict, texts: list[str], repeat: int) -> dict:
    """Each configuration's fastest of `repeat` passes over `texts` (taking turns, after a warmup on
    a few texts) and its entities from the last pass."""
    for call, _ in configs.values():
        call(texts[:WARMUP_TEXTS])
    best = dict.fromkeys(configs, float("inf"))
    found: dict[str, Entities] = {}
    for _ in range(repeat):
        for name, (call, _) in configs.items():
            start = time.perf_counter()
            found[name] = call(texts)
            best[name] = min(best[name], time.perf_counter() - start)
    return {
        name: info
        | {"seconds": best[name], "sentences_per_s": len(texts) / best[name], "entities": found[name]}
        for name, (_, info) in configs.items()
    }


def spans(entities: Entities) -> list[tuple]:
    """Per sentence, its entities as (entity_group, start, end): what agreement compares."""
    return [tuple((e["entity_group"], int(e["start"]), int(e["end"])) for e in one) for one in entities]


def agreement(found: Entities, reference: Entities) -> float:
    """The share of sentences whose entities are identical to the reference's.

    >>> a = [[{"entity_group": "PER", "start": 0, "end": 3}], []]
    >>> agreement(a, [a[0], [{"entity_group": "LOC", "start": 4, "end": 9}]])
    0.5
    """
    same = sum(x == y for x, y in zip(spans(found), spans(reference), strict=True))
    return same / len(reference)


# --- Report -----------------------------------------------------------------------------------
def summarize(results: dict, reference: str) -> dict:
    """Each result with its agreement with `reference` and its ratio to the fastest rival."""
    rivals = {n: r for n, r in results.items() if r["rival"]}
    fastest = max(rivals, key=lambda n: rivals[n]["sentences_per_s"])
    out = {}
    for name, r in results.items():
        figures = {k: v for k, v in r.items() if k != "entities"}
        figures["agreement"] = agreement(r["entities"], results[reference]["entities"])
        figures["ratio_to_best_rival"] = r["sentences_per_s"] / rivals[fastest]["sentences_per_s"]
        figures["entities_per_sentence"] = sum(map(len, r["entities"])) / len(r["entities"])
        out[name] = figures
    holding = [n for n in rivals if out[n]["agreement"] >= AGREEMENT_TARGET]  # the reference is one
    fastest_holding = max(holding, key=lambda n: rivals[n]["sentences_per_s"])
    return {
        "best_rival": fastest,
        "best_rival_at_target": fastest_holding,
        "reference": reference,
        "results": out,
    }


def report(summary: dict, head: dict) -> str:
    results, fastest = summary["results"], summary["best_rival"]
    lines = [f"Model: {head['model_description']}."]
    if head["random_head"]:
        lines.append(
            "There is no embedded NER model: speed does not depend on trained weights, the entities "
            "are meaningless, and fp32 agreement checks the arithmetic. A random head leaves labels a "
            "hair apart more often than a trained one, so bf16's agreement with fp32 (either library's) "
            "may be lower here than on a trained model."
        )
    lines += [
        f"{head['sentences']} CoNLL-2003 test sentences ({head['tokens']} tokens without specials), "
        f"aggregation_strategy={head['strategy']!r}, {head['threads']} threads, fastest of {head['repeat']} "
        "passes after a warmup.",
        "",
        "| setting | dtype | batch size | sentences/s | x best rival | agreement with pipeline fp32 "
        "| entities/sentence |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        batch = "engine" if r["batch_size"] is None else str(r["batch_size"])
        lines.append(
            f"| {name} | {r['dtype']} | {batch} | {r['sentences_per_s']:.1f} | {r['ratio_to_best_rival']:.2f} "
            f"| {r['agreement']:.2%} | {r['entities_per_sentence']:.2f} |"
        )
    best = results[fastest]
    lines += [
        "",
        f"Best rival: {fastest}, {best['sentences_per_s']:.1f} sentences/s "
        f"({best['agreement']:.2%} agreement with {summary['reference']}).",
    ]
    holding = summary["best_rival_at_target"]  # the fp32 reference always holds
    if holding != fastest:
        lines.append(
            f"Fastest rival at >= {AGREEMENT_TARGET:.1%} agreement: {holding}, "
            f"{results[holding]['sentences_per_s']:.1f} sentences/s."
        )
    for name, r in results.items():
        if not r["rival"]:
            verdict = "met" if r["agreement"] >= AGREEMENT_TARGET else "NOT met"
            lines.append(
                f"{name} ({r['dtype']}) / best rival: {r['ratio_to_best_rival']:.2f}x; agreement "
                f"{r['agreement']:.2%} (target >= {AGREEMENT_TARGET:.1%}: {verdict})."
            )
    lines += [
        "",
        f"CPU: {head['cpu']}.",
        f"torch {head['torch']}, transformers {head['transformers']}, Python {head['python']}.",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> dict:
    if args.threads:  # before tokenizers' thread pool starts
        os.environ["RAYON_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    import transformers
    from throughput import cpu_description  # benchmarks/, first on sys.path when this script runs

    if args.threads:
        torch.set_num_threads(args.threads)
    texts = read_texts(Path(args.data), args.sentences)
    with tempfile.TemporaryDirectory(prefix="clearpipe-ner-speed-") as scratch:
        model, description, random_head = pick_model(args.model, Path(scratch))
        rivals = rival_configs(model, sorted(set(args.batch_sizes)), args.strategy)
        ours = clearpipe_configs(model, args.dtypes, args.strategy, args.threads)
        ours |= export_configs(args.exports, args.strategy, args.threads)
        results = measure(ours | rivals, texts, args.repeat)
        from transformers import AutoTokenizer

        encoded = AutoTokenizer.from_pretrained(model)(texts, add_special_tokens=False)
        tokens = sum(len(ids) for ids in encoded["input_ids"])
    summary = summarize(results, f"pipeline float32 b{min(args.batch_sizes)}")
    head = {
        "model": args.model,
        "model_description": description,
        "random_head": random_head,
        "sentences": len(texts),
        "tokens": tokens,
        "strategy": args.strategy,
        "threads": torch.get_num_threads(),
        "repeat": args.repeat,
        "cpu": cpu_description(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
    print(report(summary, head))
    out = head | summary
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="A token-classification checkpoint folder (default: see above).")
    parser.add_argument(
        "--data",
        default=str(DATA / "conll2003" / "test.txt"),
        help="A CoNLL file (default: shared/data/conll2003/test.txt beside the checkout).",
    )
    parser.add_argument(
        "--exports",
        nargs="*",
        default=[],
        help="Folders `clearpipe export` wrote from the same model, timed as clearpipe configurations too.",
    )
    parser.add_argument("--sentences", type=int, default=0, help="Sentences to time (0: all). Default all.")
    parser.add_argument(
        "--threads", type=int, default=2, help="Threads of both sides (0: torch's default). Default 2."
    )
    parser.add_argument("--repeat", type=int, default=3, help="Timed passes; the fastest counts. Default 3.")
    parser.add_argument("--strategy", choices=("first", "simple"), default="first")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument(
        "--dtypes",
        nargs="+",
        default=["auto", "float32", "bfloat16"],
        choices=("auto", "float32", "bfloat16", "float16"),
        help="clearpipe's dtypes; one that auto resolved to is timed once. Default auto float32 bfloat16.",
    )
    parser.add_argument("--json", help="Write every figure to this JSON file.")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.sentences < 0 or min(args.batch_sizes) < 1 or args.threads < 0:
        parser.error("--repeat and --batch-sizes take 1 or more; --sentences and --threads 0 or more")
    args.sentences = args.sentences or None
    return args


if __name__ == "__main__":
    main(parse())
