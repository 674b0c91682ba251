"""Where `Classifier.__call__`'s time goes on short texts: stage by stage, and outside matmuls.

    PYTHONPATH=src python benchmarks/overhead.py [--model DIR] [--texts 1000] [--passes 3] [--dtype D] [--threads 2]

`clf(texts)` runs on SST-2 test sentences (`--texts`, a seeded sample; 0: all), after
`clf.warmup()` and one untimed call. Two views of that same call:

1. **Stages.** `time.perf_counter` around the public functions the call goes through, patched
   for the run and restored after: `inputs.normalize_inputs`, `Classifier.tokenize`,
   `engine.batching.token_budget_batches` (the length sort and the cut into batches),
   `engine.run.Runner.batch` (padding, `preprocess.collate`, or packing, `engine.packing.pack`),
   `engine.run.Runner.forward` (the model), the int8 referee's re-runs, `Classifier.postprocess`
   and `Predictions.to_output` (the output dicts). "rest" is the call's time outside all of them
   (writing logits back in input order, choosing the close calls, glue). Median of `--passes`.
2. **Matrix products.** One more call under `torch.profiler`, adding up the self time of the
   operators that multiply matrices (`aten::mm`, `addmm`, `bmm`, `baddbmm`, oneDNN's packed
   linear `mkldnn::_linear_pointwise`, int8's `onednn::qlinear_pointwise`). The share of the
   call's wall time outside them is printed, with the operators that take most of the rest.
   The profiler adds a few microseconds to every operator, so the share it shows is somewhat
   above the real one; the stage times of view 1 are taken without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import throughput  # benchmarks/, first on sys.path when this script runs: read_texts, the datasets

MATMUL_SUFFIXES = ("::mm", "::addmm", "::bmm", "::baddbmm", "::_addmm_activation")
MATMUL_PARTS = ("linear_pointwise", "qlinear")  # oneDNN's prepacked float and int8 linears


class Stopwatch:
    """Seconds spent in each patched function, summed per label over one or more calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def timed(self, function, label: str, materialize: bool = False):
        """`function`, its calls timed under `label`; with `materialize`, it returns an iterator,
        drained into a list inside the timing."""

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                result = function(*args, **kwargs)
                return list(result) if materialize else result
            finally:
                self.seconds[label] += time.perf_counter() - start

        return timed

    @contextmanager
    def patch(self, owner: object, name: str, label: str, materialize: bool = False):
        """Time every call of `owner.name` under `label` while the context lasts."""
        original = getattr(owner, name)
        setattr(owner, name, self.timed(original, label, materialize))
        try:
            yield
        finally:
            setattr(owner, name, original)


STAGES = (  # (module, attribute path, label, returns an iterator)
    ("clearpipe.classifier", "normalize_inputs", "normalize inputs", False),
    ("clearpipe.classifier", "Classifier.tokenize", "tokenize", False),
    ("clearpipe.engine.batching", "token_budget_batches", "sort + cut into batches", True),
    ("clearpipe.engine.run", "Runner.batch", "pad or pack (collate)", False),
    ("clearpipe.engine.run", "Runner.forward", "forward (model)", False),
    ("clearpipe.classifier", "Classifier.postprocess", "postprocess", False),
    ("clearpipe.postprocess", "Predictions.to_output", "output dicts", False),
)


@contextmanager
def staged(clf, watch: Stopwatch):
    """Every stage of `STAGES`, and the int8 referee's forward, timed by `watch`."""
    import importlib

    with ExitStack() as stack:
        for module, path, label, materialize in STAGES:
            owner = importlib.import_module(module)
            *parents, name = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            stack.enter_context(watch.patch(owner, name, label, materialize))
        referee = clf.referee
        if referee is not None:  # a frozen dataclass: a copy with a timed runner, put back after
            timed = SimpleNamespace(
                width=referee.runner.width,
                outputs=watch.timed(referee.runner.outputs, "int8 referee re-runs"),
            )
            clf.referee = dataclasses.replace(referee, runner=timed)
            stack.callback(setattr, clf, "referee", referee)
        yield


def stage_times(clf, texts: list[str], passes: int) -> dict[str, float]:
    """Median seconds per stage (and "rest", and "total") over `passes` calls of `clf(texts)`."""
    runs = []
    for _ in range(passes):
        watch = Stopwatch()
        with staged(clf, watch):
            start = time.perf_counter()
            clf(texts)
            total = time.perf_counter() - start
        runs.append(dict(watch.seconds) | {"rest": total - sum(watch.seconds.values()), "total": total})
    labels = dict.fromkeys(label for run in runs for label in run)
    return {label: statistics.median(run.get(label, 0.0) for run in runs) for label in labels}


def is_matmul(name: str) -> bool:
    """Whether a profiler operator name is a matrix product.

    >>> is_matmul("aten::addmm"), is_matmul("mkldnn::_linear_pointwise"), is_matmul("aten::softmax")
    (True, True, False)
    """
    return name.endswith(MATMUL_SUFFIXES) or any(part in name for part in MATMUL_PARTS)


def matmul_share(clf, texts: list[str], top: int = 12) -> dict:
    """One call under torch.profiler: its wall seconds, the matrix products' self seconds, and
    the operators with the most self time outside them."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        clf(texts)
        wall = time.perf_counter() - start
    ops = [(e.key, e.self_cpu_time_total / 1e6, e.count) for e in prof.key_averages()]
    matmul = sum(seconds for name, seconds, _ in ops if is_matmul(name))
    others = sorted((op for op in ops if not is_matmul(op[0])), key=lambda op: -op[1])[:top]
    return {"wall": wall, "matmul": matmul, "others": others}


def report(stages: dict[str, float], shares: dict, texts: int) -> str:
    """Both views as text: a stage table, then the share outside matrix products."""
    total = stages["total"]
    lines = [f"clf(texts) on {texts} SST-2 sentences: {total * 1e3:.0f} ms, {texts / total:.0f} texts/s.", ""]
    lines += ["| stage | ms | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {v * 1e3:.1f} | {v / total:.1%} |" for k, v in stages.items() if k != "total"]
    wall, matmul = shares["wall"], shares["matmul"]
    lines += [
        "",
        f"Under torch.profiler: {wall * 1e3:.0f} ms, matrix products {matmul * 1e3:.0f} ms; "
        f"outside matrix products: {1 - matmul / wall:.1%} of the call.",
        "Operators with the most self time outside matrix products:",
    ]
    lines += [f"  {name:<45} {seconds * 1e3:8.1f} ms  x{count}" for name, seconds, count in shares["others"]]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    import clearpipe

    texts = throughput.read_texts("sst2", args.texts or None)
    options = {"dtype": args.dtype} if args.dtype else {}
    clf = clearpipe.load(args.model, threads=args.threads or None, **options)
    clf.warmup()
    clf(texts)  # untimed: first-call allocations and kernel choices
    print(f"{clf!r}\n")
    print(report(stage_times(clf, texts, args.passes), matmul_share(clf, texts), len(texts)))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(throughput.ROOT) / "src" / "clearpipe" / "default_model"))
    parser.add_argument(
        "--texts", type=int, default=1000, help="SST-2 test sentences (0: all). Default 1000."
    )
    parser.add_argument("--passes", type=int, default=3, help="Timed calls; the median counts. Default 3.")
    parser.add_argument("--dtype", help="load(dtype=...): float32, bfloat16, int8 (default: clearpipe's).")
    parser.add_argument("--threads", type=int, default=2, help="Threads (0: PyTorch's default). Default 2.")
    return parser.parse_args()


if __name__ == "__main__":
    main(parse())
