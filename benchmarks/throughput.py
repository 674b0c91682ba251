"""Throughput of clearpipe against its rivals: same model, same machine, same inputs.

    PYTHONPATH=src python benchmarks/throughput.py [--model DIR] [--limit N] [--threads 2] [--json FILE]

Every setting runs in a fresh process (so peak RSS is its own) with `--threads` threads (2 by
default, the targets' setup; 0: each library's own default) on `sst2/test.tsv` and
`agnews/test.tsv`. The rivals: transformers.pipeline in fp32 at batch size 1 and 32, in bf16 at
batch size 32 with the input as given and sorted by token length (order restored, the sort
timed), and, where `pip install 'clearpipe[bench]'` put them, OpenVINO (its default precision,
and int8 through nncf) and CTranslate2 int8 (`benchmarks/rivals.py` says how each is made and
run; a rival whose package is missing is skipped with the reason printed). Then clearpipe with
default settings, fp32, torch int8, the ONNX Runtime exports (fp32 and int8) and the OpenVINO
exports (OpenVINO's default precision and nncf int8; skipped without `clearpipe[openvino]`), all
made by `clearpipe export` with its accuracy guard, each timed over `--repeats` passes (median).
Reported per setting and dataset: texts/s, the ratio to the best fp32 transformers.pipeline
setting (the pipeline targets' yardstick) and to the fastest rival at 99.5% agreement (the rival
targets'), label agreement and largest |score difference| against fp32 eager (transformers.pipeline
at batch size 1), the share of texts that int8's float referee re-ran (`clearpipe.engine.recheck`),
peak RSS, and model FLOP utilization: the FLOPs the texts need (real tokens; see `model_flops`) per second over
a large matrix multiply's rate in the same number format (int8 included), measured here. Then
the ceiling those rates put on any setting (texts/s with every FLOP at the measured rate, and
that as a multiple of the best pipeline: what this machine allows at all), the CPU's name and
vector features, `clearpipe predict`'s peak RSS at 10k and 100k rows, and the cold start of
`clearpipe classify "x"` against the equivalent transformers.pipeline script, and last a line per
speed target, met or not (`benchmarks/targets.py`, which also judges a saved run).
A Markdown table goes to stdout; `--json FILE` writes every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rivals  # benchmarks/, first on sys.path when this script runs
import targets

ROOT = Path(__file__).resolve().parents[1]
# The project's datasets live in shared/data beside the checkout (or beside its parent folder).
DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT / "shared" / "data",
)
DATASETS = {"sst2": ("sst2/test.tsv", "sentence"), "agnews": ("agnews/test.tsv", "text")}
REFERENCE = "pipeline-b1"
# name -> (kind, options): kind "pipeline" takes a batch size (and a dtype, and whether to sort
# the input by length), "clearpipe" load() options, "export" `clearpipe export` options (the
# folder then runs through clearpipe.load as exported), "rival" a setting of `rivals.RIVALS`.
SETTINGS = {
    "pipeline-b1": ("pipeline", {"batch_size": 1}),
    "pipeline-b32": ("pipeline", {"batch_size": 32}),
    "pipeline-bf16-b32": ("pipeline", {"batch_size": 32, "dtype": "bfloat16"}),
    "pipeline-bf16-b32-sorted": ("pipeline", {"batch_size": 32, "dtype": "bfloat16", "sort": True}),
    "openvino": ("rival", {}),
    "openvino-int8": ("rival", {}),
    "ctranslate2-int8": ("rival", {}),
    "clearpipe-default": ("clearpipe", {}),
    "clearpipe-fp32": ("clearpipe", {"dtype": "float32"}),
    "clearpipe-int8": ("clearpipe", {"dtype": "int8"}),
    "clearpipe-onnx": ("export", {}),
    "clearpipe-onnx-int8": ("export", {"quantize": "int8"}),
    "clearpipe-openvino": ("export", {"format": "openvino"}),
    "clearpipe-openvino-int8": ("export", {"format": "openvino", "quantize": "int8"}),
    # The same export through `clearpipe.lite`: no torch, no transformers in the process.
    "clearpipe-lite-openvino-int8": ("export", {"format": "openvino", "quantize": "int8", "lite": True}),
    # int8 weights, activations quantized at run time: one graph, no referee.
    "clearpipe-lite-openvino-int8-dynamic": (
        "export",
        {"format": "openvino", "quantize": "int8-dynamic", "lite": True},
    ),
    "clearpipe-fp16": ("clearpipe", {"dtype": "float16"}),  # for GPUs; CPUs emulate fp16 slowly
}
DEFAULT_SETTINGS = [s for s in SETTINGS if s != "clearpipe-fp16"]
BASELINES = ("pipeline-b1", "pipeline-b32")  # always run: the reference and the targets' yardstick


# --- Worker: one setting, one dataset, in its own process --------------------------------------
def read_texts(dataset: str, limit: int | None) -> list[str]:
    """The dataset's texts (TSV read without quoting), subsampled to `limit` with a fixed seed."""
    path, column = DATASETS[dataset]
    with open(Path(os.environ.get("CLEARPIPE_DATA", DATA)) / path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        index = header.index(column)
        texts = [line.rstrip("\n").split("\t")[index] for line in handle if line.strip()]
    if limit is not None and limit < len(texts):
        texts = random.Random(0).sample(texts, limit)
    return texts


def timed(run, repeats: int):
    """Median seconds of `repeats` calls of `run`, and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_pipeline(model: str, texts: list[str], options: dict, device: str, repeats: int):
    """transformers.pipeline in `options["dtype"]` (float32 by default) at `options["batch_size"]`;
    with `options["sort"]`, the texts go in sorted by token length (the sort is timed) and the
    results come back in input order."""
    import numpy as np
    import torch
    from transformers import pipeline

    dtype = options.get("dtype", "float32")
    pipe = pipeline(
        "text-classification", model=model, device=device, dtype=getattr(torch, dtype), top_k=None
    )
    labels = [pipe.model.config.id2label[i] for i in range(pipe.model.config.num_labels)]
    batch_size = options["batch_size"]

    def classify():
        if not options.get("sort"):
            return pipe(texts, batch_size=batch_size, truncation=True)
        lengths = [len(ids) for ids in pipe.tokenizer(texts, truncation=True)["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        out = pipe([texts[i] for i in order], batch_size=batch_size, truncation=True)
        return [row for _, row in sorted(zip(order, out, strict=True), key=lambda pair: pair[0])]

    pipe(texts[:4], batch_size=batch_size, truncation=True)  # warm-up
    seconds, out = timed(classify, repeats)
    scores = np.array([[{r["label"]: r["score"] for r in row}[label] for label in labels] for row in out])
    return seconds, scores, dtype


def run_clearpipe(model: str, texts: list[str], options: dict, device: str, repeats: int, threads: int):
    import clearpipe

    clf = clearpipe.load(model, device=device, threads=threads or None, **options)
    clf.warmup()
    seconds, predictions = timed(lambda: clf.predict(texts), repeats)
    dtype = clf.settings.dtype
    if dtype == "openvino":  # the precision OpenVINO chose, int8 layers aside
        dtype = f"openvino {clf.model.precision}"
    return seconds, predictions.scores, dtype, rechecked_rows(clf, texts)


def run_lite(folder: str, texts: list[str], options: dict, device: str, repeats: int, threads: int):
    """An export through `clearpipe.lite` (CPU only), which imports neither torch nor transformers."""
    import dataclasses

    from clearpipe import lite
    from clearpipe.engine.exported import EXPORT_INFO
    from clearpipe.engine.recheck import close_calls

    clf = lite.load(folder, threads=threads or None)
    clf.predict(texts[:64])  # warm-up, as `Classifier.warmup`
    seconds, predictions = timed(lambda: clf.predict(texts), repeats)
    rechecked = None
    if clf.referee is not None:  # counted on one more pass, as `rechecked_rows`
        int8_only = dataclasses.replace(clf, referee=None).logits(texts)
        rechecked = len(close_calls(int8_only, clf.referee.margin))
    quantize = json.loads((Path(folder) / EXPORT_INFO).read_text())["quantize"]
    return seconds, predictions.scores, f"openvino {quantize or 'float'} (lite)", rechecked


def rechecked_rows(clf, texts: list[str]) -> int | None:
    """How many texts an int8 classifier's float referee re-ran (None: no referee), counted on
    one more pass after the timed ones, with the referee's runner wrapped to count its rows."""
    import dataclasses
    from types import SimpleNamespace

    referee = clf.referee
    if referee is None:
        return None
    rows: list[int] = []

    def counting(tokenized, picked):
        rows.append(len(picked))
        return referee.runner.outputs(tokenized, picked)

    counted = SimpleNamespace(width=referee.runner.width, outputs=counting)
    clf.referee = dataclasses.replace(referee, runner=counted)
    try:
        clf.predict(texts)
    finally:
        clf.referee = referee
    return sum(rows)


def worker(args: argparse.Namespace) -> None:
    """Run one setting on one dataset; write scores (.npy) and figures (.json) under --scratch."""
    import numpy as np

    kind, options = SETTINGS[args.setting]
    texts = read_texts(args.dataset, args.limit)
    rechecked = None
    if kind == "pipeline":
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        seconds, scores, dtype = run_pipeline(args.model, texts, options, args.device, args.repeats)
    elif kind == "rival":  # the folder made by `rivals.prepare`; neither torch nor transformers loaded
        folder = Path(args.scratch) / args.setting
        seconds, scores, dtype = rivals.run(
            args.setting, folder, texts, args.threads, args.rival_batch_size, args.repeats
        )
    else:
        if kind == "export":  # the export folder, made by `export` below; it runs as exported
            model, lite = str(Path(args.scratch) / args.setting), options.get("lite", False)
            options = {}
        else:
            model, lite = args.model, False
        run = run_lite if lite else run_clearpipe
        seconds, scores, dtype, rechecked = run(
            model, texts, options, args.device, args.repeats, args.threads
        )
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before real_tokens loads more
    stem = Path(args.scratch) / f"{args.setting}-{args.dataset}"
    np.save(f"{stem}.npy", scores)
    figures = {
        "texts": len(texts),
        "seconds": seconds,
        "texts_per_s": len(texts) / seconds,
        "dtype": dtype,
        "rechecked": rechecked,
        "peak_rss_mb": peak_rss_mb,
        "real_tokens": real_tokens(args.model, texts),
    }
    Path(f"{stem}.json").write_text(json.dumps(figures))


def real_tokens(model: str, texts: list[str]) -> list[int]:
    """Token count of every text after truncation: the work a model must do, padding excluded."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    limit = min(tokenizer.model_max_length, 512)
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=limit)["input_ids"]]


# --- FLOPs and the machine's matrix-multiply rate ----------------------------------------------
def model_flops(model: str, lengths: list[int]) -> float:
    """Multiply-add FLOPs that classifying texts of these token lengths needs, for a BERT-style
    encoder whose head reads the first token: every layer on every real token, except the last,
    where only the keys and values need every token and the rest the first token alone
    (`clearpipe.engine.first_token`). Padding and the last layer's unread positions are not counted,
    so a setting that computes them (transformers.pipeline does) shows it as a lower MFU."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model)
    hidden = config.hidden_size
    layers = config.num_hidden_layers
    inner = config.intermediate_size
    per_token = 2 * (4 * hidden * hidden + 2 * hidden * inner)  # projections + FFN, one layer
    attention = 2 * 2 * hidden  # QK^T and AV per query and key
    last_per_token = 2 * 2 * hidden * hidden  # the last layer's keys and values
    last_per_text = 2 * (2 * hidden * hidden + 2 * hidden * inner)  # its query, output, FFN: once
    head = 2 * (hidden * hidden + hidden * config.num_labels)  # pooler + classifier, once per text
    return float(
        sum(
            (layers - 1) * (per_token * t + attention * t * t)
            + last_per_token * t
            + last_per_text
            + attention * t
            + head
            for t in lengths
        )
    )


def matmul_rate(dtype_name: str, device: str, seconds: float = 2.0) -> float | None:
    """FLOP/s (int8: operations/s) of a large square matrix multiply in `dtype_name` on `device`.

    On the CPU, the faster of PyTorch's two kernels: `a @ b` (MKL for float32) and oneDNN's
    linear on a prepacked weight, which clearpipe runs and which is twice as fast in float32
    on some AVX-512 machines. Measuring against the slower one would put MFU above 100%. int8
    is oneDNN's u8 x s8 product that `clearpipe.engine.int8` runs (None where this build lacks it).
    """
    import torch

    size = 8192 if device.startswith("cuda") else 2048
    if dtype_name == "int8":
        kernel = _int8_kernel(size) if device == "cpu" else None
        return None if kernel is None else _flops_per_second(kernel, 2 * size**3, device, seconds)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype_name]
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    kernels = [lambda: a @ b]
    mkldnn = torch.ops.mkldnn
    if device == "cpu" and hasattr(mkldnn, "_reorder_linear_weight") and dtype != torch.float16:
        packed = mkldnn._reorder_linear_weight(b, None)
        kernels.append(lambda: mkldnn._linear_pointwise(a, packed, None, "none", [], None))
    return max(_flops_per_second(kernel, 2 * size**3, device, seconds / len(kernels)) for kernel in kernels)


def _int8_kernel(size: int):
    import torch

    from clearpipe.engine import int8

    if not int8.available():
        return None
    q = torch.randint(0, 256, (size, size), dtype=torch.uint8)
    packed = torch.ops.onednn.qlinear_prepack(torch.randint(-127, 128, (size, size), dtype=torch.int8), None)
    scale = torch.full((size,), 0.01)
    return lambda: int8.product(q, packed, scale, torch.bfloat16)  # the call Int8Linear makes


def best_pipeline(raw: dict) -> dict[str, float]:
    """Per dataset, the texts/s of the fastest fp32 transformers.pipeline setting: what the
    pipeline targets' ratios divide by."""
    best: dict[str, float] = {}
    for (setting, dataset), r in raw.items():
        kind, options = SETTINGS[setting]
        if kind == "pipeline" and options.get("dtype", "float32") == "float32":
            best[dataset] = max(best.get(dataset, 0.0), r["texts_per_s"])
    return best


def ceilings(results: dict, rates: dict, best: dict[str, float]) -> dict:
    """Per dataset and number format: texts/s if every model FLOP ran at the measured matrix
    multiply rate (padding, attention's softmax, LayerNorm and the rest for free), and that as
    a multiple of the best pipeline. No setting can beat it: it says which targets this machine
    can reach at all."""
    out: dict = {}
    for dataset, pipeline in best.items():
        any_row = next(r for (_, d), r in results.items() if d == dataset)
        per_text = any_row["model_flops"] / any_row["texts"]
        out[dataset] = {
            dtype: {"texts_per_s": rate / per_text, "ratio": rate / per_text / pipeline}
            for dtype, rate in rates.items()
            if rate
        }
    return out


def cpu_description() -> str:
    """The CPU as /proc/cpuinfo names it, with the vector features that decide clearpipe's speed."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        import platform

        return platform.processor() or "unknown CPU"
    fields: dict[str, str] = {}
    for line in info.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    wanted = ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
    flags = [f for f in wanted if f in fields.get("flags", "").split()]
    return (
        f"{fields.get('model name', 'unknown')} (family {fields.get('cpu family', '?')}, model "
        f"{fields.get('model', '?')}), {os.cpu_count()} logical CPUs, {' '.join(flags) or 'no AVX-512'}"
    )


def _flops_per_second(kernel, flops: float, device: str, seconds: float) -> float:
    import torch

    for _ in range(2):
        kernel()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        kernel()
        runs += 1
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return flops * runs / (time.perf_counter() - start)


# --- Driver ------------------------------------------------------------------------------------
def spawn(args: argparse.Namespace, setting: str, dataset: str, scratch: Path) -> dict:
    command = [sys.executable, __file__, "--worker", "--setting", setting, "--dataset", dataset]
    command += ["--model", args.model, "--scratch", str(scratch), "--device", args.device]
    command += ["--limit", str(args.limit)] if args.limit else []
    command += ["--repeats", str(args.repeats), "--threads", str(args.threads)]
    command += ["--rival-batch-size", str(args.rival_batch_size)]
    subprocess.run(command, check=True, env=_env(args.threads))
    return json.loads((scratch / f"{setting}-{dataset}.json").read_text())


def _env(threads: int = 0) -> dict:
    """The children's environment: clearpipe's sources importable, the hub offline, and with
    `threads`, OpenMP's and the tokenizer's (Rayon's) thread pools of that size too."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.setdefault("HF_HUB_OFFLINE", "1")
    if threads:
        env["OMP_NUM_THREADS"] = env["RAYON_NUM_THREADS"] = str(threads)
    return env


def missing_backends(settings: list[str]) -> dict[str, str]:
    """The OpenVINO exports among `settings` that cannot run here, with why."""
    skipped = {}
    for setting in settings:
        if SETTINGS[setting][1].get("format") == "openvino":
            needed = ("openvino", "nncf") if SETTINGS[setting][1].get("quantize") else ("openvino",)
            absent = [name for name in needed if importlib.util.find_spec(name) is None]
            if absent:
                skipped[setting] = f"{', '.join(absent)} not installed (pip install 'clearpipe[openvino]')"
                print(f"skipping {setting}: {skipped[setting]}", file=sys.stderr)
    return skipped


def prepare_rivals(args: argparse.Namespace, settings: list[str], scratch: Path) -> dict[str, str]:
    """Make every rival runtime's model with `rivals.py prepare`, each in its own process; the
    rivals that cannot run here (package missing, conversion failed), with why."""
    skipped = {}
    for setting in (s for s in settings if SETTINGS[s][0] == "rival"):
        reason = rivals.missing(setting)
        if reason is None:
            command = [sys.executable, str(Path(__file__).with_name("rivals.py")), "prepare", setting]
            run = subprocess.run(
                [*command, args.model, str(scratch / setting)], capture_output=True, text=True, env=_env()
            )
            failed = run.returncode != 0
            reason = (
                f"could not be made: {(run.stderr.strip().splitlines() or ['?'])[-1]}" if failed else None
            )
        if reason:
            print(f"skipping {setting}: {reason}", file=sys.stderr)
            skipped[setting] = reason
    return skipped


def export(args: argparse.Namespace, setting: str, scratch: Path) -> dict:
    """Make the ONNX export for `setting` with `clearpipe export` and its accuracy guard.

    An export the guard refuses is made again without the guard, so that its speed and its
    agreement still appear in the table, marked as refused.
    """
    options = SETTINGS[setting][1]
    command = [sys.executable, "-m", "clearpipe", "export", args.model, "--output", str(scratch / setting)]
    command += ["--format", options.get("format", "onnx")]
    command += ["--quantize", options["quantize"]] if options.get("quantize") else []
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=_env())
    report = {"seconds": time.perf_counter() - start, "refused": run.returncode != 0}
    report["message"] = (run.stdout + run.stderr).strip().splitlines()[-1:]
    if run.returncode != 0:
        subprocess.run([*command, "--threshold", "0"], check=True, capture_output=True, env=_env())
    return report


def agreement(scratch: Path, setting: str, dataset: str) -> tuple[float, float]:
    import numpy as np

    reference = np.load(scratch / f"{REFERENCE}-{dataset}.npy")
    scores = np.load(scratch / f"{setting}-{dataset}.npy")
    same = float(np.mean(reference.argmax(1) == scores.argmax(1)))
    return same, float(np.abs(reference - scores).max())


def peak_rss_of(command: list[str]) -> float:
    """Peak RSS (MB) of `command`, measured by a fresh parent so no other child counts."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True, env=_env()
    )
    return int(out.stdout.split()[-1]) / 1024


# `predict --lite` runs this export when the run made it: the explicit fast mode's bulk path.
LITE_PREDICT = "clearpipe-lite-openvino-int8-dynamic"


def predict_memory(args: argparse.Namespace, scratch: Path, model: list[str]) -> dict:
    """Peak RSS of `clearpipe predict --model *model` over tables of each size, built by repeating
    SST-2 texts."""
    texts = read_texts("sst2", None)
    result = {}
    for rows in args.rss_rows:
        table = scratch / f"rows-{rows}.tsv"
        table.write_text(
            "text\n" + "".join(f"{texts[i % len(texts)]}\n" for i in range(rows)), encoding="utf-8"
        )
        output = scratch / f"rows-{rows}-out.csv"
        command = [sys.executable, "-m", "clearpipe", "predict", str(table), "--output", str(output)]
        start = time.perf_counter()
        rss = peak_rss_of([*command, "--model", *model])
        result[rows] = {"peak_rss_mb": rss, "seconds": time.perf_counter() - start}
        table.unlink()
        output.unlink(missing_ok=True)
    return result


def cold_start(args: argparse.Namespace, repeats: int = 3) -> dict:
    """Median seconds from process start to printed answer, clearpipe vs transformers.pipeline."""
    script = (
        "from transformers import pipeline; import sys; "
        "print(pipeline('text-classification', model=sys.argv[1], device='cpu')('x'))"
    )
    commands = {
        "clearpipe classify": [sys.executable, "-m", "clearpipe", "classify", "x", "--model", args.model],
        "transformers.pipeline script": [sys.executable, "-c", script, args.model],
    }
    timings: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):  # interleaved, so that both see the same file cache and load
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=_env())
            timings[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in timings.items()}


RIVAL_BARS = (0.995, 0.99)  # the agreement bars of the rival targets; the table uses the first


def rival_ratios(results: dict, bar: float = RIVAL_BARS[0]) -> dict:
    """Each row with `ratio_to_rival`: its texts/s over the fastest rival's on its dataset among
    the rivals agreeing with fp32 on at least `bar` of the labels (None if no rival does)."""
    run = {"results": [{"setting": s, "dataset": d} | r for (s, d), r in results.items()]}
    fastest = {d: targets.fastest_rival(run, d, bar) for _, d in results}
    return {
        (s, d): r
        | {"ratio_to_rival": r["texts_per_s"] / fastest[d][1]["texts_per_s"] if fastest[d] else None}
        for (s, d), r in results.items()
    }


def rival_lines(results: dict) -> str:
    """The fastest rival of each dataset at each agreement bar: what the rival targets' ratios divide by."""
    run = {"results": [{"setting": s, "dataset": d} | r for (s, d), r in results.items()]}
    parts = []
    for dataset in dict.fromkeys(d for _, d in results):
        found = [(bar, targets.fastest_rival(run, dataset, bar)) for bar in RIVAL_BARS]
        parts.append(
            f"{dataset}: "
            + ", ".join(
                f">= {bar:.1%} {f[0]} {f[1]['texts_per_s']:.0f} texts/s" if f else f">= {bar:.1%} none"
                for bar, f in found
            )
        )
    return "Fastest rival at each agreement bar: " + "; ".join(parts) + "."


def table(results: dict, rates: dict, exports: dict) -> str:
    lines = [
        "| setting | dataset | dtype | texts/s | x best pipeline | x fastest rival | label agreement "
        "| max abs score diff | re-run in float | peak RSS MB | MFU |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (setting, dataset), r in results.items():
        mfu = f"{r['mfu']:.0%}" if r.get("mfu") is not None else "n/a"
        refused = " (refused by export guard)" if exports.get(setting, {}).get("refused") else ""
        rerun = "" if r.get("rechecked") is None else f"{r['rechecked'] / r['texts']:.1%}"
        to_rival = "n/a" if r.get("ratio_to_rival") is None else f"{r['ratio_to_rival']:.2f}"
        lines.append(
            f"| {setting}{refused} | {dataset} | {r['dtype']} | {r['texts_per_s']:.0f} | {r['ratio']:.2f} "
            f"| {to_rival} | {r['label_agreement']:.2%} | {r['max_score_diff']:.4f} | {rerun} "
            f"| {r['peak_rss_mb']:.0f} | {mfu} |"
        )
    rate_text = ", ".join(
        f"{k} {v / 1e9:.0f} G{'OP' if k == 'int8' else 'FLOP'}/s" for k, v in rates.items() if v
    )
    return (
        "\n".join(lines)
        + f"\n\nx fastest rival: against the fastest rival at >= {RIVAL_BARS[0]:.1%} agreement."
        + f"\nMeasured matrix-multiply rate: {rate_text}."
    )


def ceiling_lines(caps: dict) -> str:
    parts = [
        f"{dataset} "
        + ", ".join(
            f"{dtype} {c['texts_per_s']:.0f} texts/s ({c['ratio']:.2f}x)" for dtype, c in by_dtype.items()
        )
        for dataset, by_dtype in caps.items()
    ]
    return "Ceiling (every model FLOP at the measured rate, x best pipeline): " + "; ".join(parts) + "."


def main(args: argparse.Namespace) -> None:
    settings = [s for s in SETTINGS if s in args.settings or s in BASELINES]
    out: dict = {
        "model": args.model,
        "device": args.device,
        "limit": args.limit,
        "repeats": args.repeats,
        "threads": args.threads or os.cpu_count(),
        "rival_batch_size": args.rival_batch_size,
    }
    with tempfile.TemporaryDirectory(prefix="clearpipe-bench-") as tmp:
        scratch = Path(tmp)
        out["skipped"] = prepare_rivals(args, settings, scratch) | missing_backends(settings)
        exported = [s for s in settings if SETTINGS[s][0] == "export" and s not in out["skipped"]]
        out["exports"] = {s: export(args, s, scratch) for s in exported}
        settings = [s for s in settings if s not in out["skipped"]]
        raw = {(s, d): spawn(args, s, d, scratch) for d in args.datasets for s in settings}
        rates = {dtype: matmul_rate(dtype, args.device) for dtype in ("float32", "bfloat16", "int8")}
        best = best_pipeline(raw)
        results = {}
        for (setting, dataset), r in raw.items():
            same, diff = agreement(scratch, setting, dataset)
            flops = model_flops(args.model, r.pop("real_tokens"))
            rate = rates.get(r["dtype"]) if r["dtype"] != "onnx" else rates["float32"]
            # ONNX Runtime's int8 kernels are not the ones measured: no MFU for them.
            unmeasured_kernels = setting == "clearpipe-onnx-int8"
            results[(setting, dataset)] = r | {
                "ratio": r["texts_per_s"] / best[dataset],
                "label_agreement": same,
                "max_score_diff": diff,
                "model_flops": flops,
                "model_gflop_per_s": flops / r["seconds"] / 1e9,
                "mfu": None if unmeasured_kernels or rate is None else flops / r["seconds"] / rate,
                "rival": targets.is_rival(setting),
            }
        results = rival_ratios(results)
        out["matmul_flop_per_s"] = rates
        out["cpu"] = cpu_description()
        out["ceilings"] = ceilings(results, rates, best)
        out["results"] = [{"setting": s, "dataset": d} | r for (s, d), r in results.items()]
        if args.rss_rows:
            out["predict_rss"] = predict_memory(args, scratch, [args.model])
            if (scratch / LITE_PREDICT).is_dir():
                lite_model = [str(scratch / LITE_PREDICT), "--lite"]
                out["predict_lite_rss"] = predict_memory(args, scratch, lite_model)
        if not args.skip_cold_start:
            out["cold_start_s"] = cold_start(args)
    print(f"CPU: {out['cpu']}.\n")
    print(table(results, rates, out["exports"]))
    print(rival_lines(results))
    for setting, reason in out["skipped"].items():
        print(f"Skipped {setting}: {reason}")
    print(ceiling_lines(out["ceilings"]))
    for key, name in (("predict_rss", "predict"), ("predict_lite_rss", f"predict --lite ({LITE_PREDICT})")):
        if key in out:
            sizes = ", ".join(
                f"{rows:,} rows {r['peak_rss_mb']:.0f} MB in {r['seconds']:.0f} s"
                for rows, r in out[key].items()
            )
            print(f"`clearpipe {name}` peak RSS: {sizes}.")
    if "cold_start_s" in out:
        print(
            "Cold start (median of 3): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in out["cold_start_s"].items())
            + "."
        )
    print("\n" + targets.report(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "src" / "clearpipe" / "default_model"))
    parser.add_argument("--limit", type=int, default=1000, help="Texts per dataset (0: all). Default 1000.")
    parser.add_argument("--json", help="Write every figure to this JSON file.")
    parser.add_argument(
        "--repeats", type=int, default=3, help="Timed passes per setting; the median counts. Default 3."
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="Threads of every setting (0: each library's default). Default 2.",
    )
    parser.add_argument(
        "--rival-batch-size",
        type=int,
        default=32,
        help="Rows per batch of the OpenVINO and CTranslate2 rivals.",
    )
    parser.add_argument(
        "--data", help="Folder with sst2/ and agnews/ (default: shared/data beside the checkout)."
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, choices=list(SETTINGS))
    parser.add_argument(
        "--rss-rows", type=int, nargs="*", default=[10_000, 100_000], help="Table sizes for predict's RSS."
    )
    parser.add_argument("--skip-cold-start", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.limit = args.limit or None
    if args.data:
        os.environ["CLEARPIPE_DATA"] = args.data  # workers inherit it
    return args


if __name__ == "__main__":
    arguments = parse()
    worker(arguments) if arguments.worker else main(arguments)
