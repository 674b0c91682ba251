"""`clearpipe predict` on one machine against `--engine ray` with 1 and 2 workers.

    python benchmarks/ray_predict.py [--rows 100000] [--workers 1,2] [--chunk-rows 4096] [--json FILE]
    python benchmarks/ray_predict.py --rows 2000 --chunk-rows 250     # a quick check of the script

Builds `--rows` AG News-length rows by repeating `agnews/test.tsv` into a temporary folder, and
classifies them with the embedded default model, each setting in a fresh process as a user runs
it: the local engine (threads = physical cores), then `--engine ray --workers N` (Ray started on
this machine; threads per worker = cores / N). Reported per setting: seconds and rows/s from
process start to exit, the ratio to the local engine, whether the labels equal the local ones on
every row (and, where not, how close to a tie the differing rows were), peak RSS of the local
process and of each Ray actor (from the run's manifest), and the start-up overhead: the same
command on `--startup-rows` rows, minus the local engine's time on them. The target is
>= 85% of the local rate with 2 workers on 100,000 rows of a 2-core machine, labels equal on every row.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The project's datasets live in shared/data beside the checkout (or beside its parent folder).
DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT / "shared" / "data",
)


@dataclass
class Result:
    setting: str
    rows: int
    seconds: float
    rows_per_s: float
    ratio_to_local: float | None = None
    labels_equal: bool | None = None
    differing_rows: int = 0
    closest_tie: float | None = None  # smallest |score - 0.5| among differing rows
    peak_rss_mib: list[float] = field(default_factory=list)  # the process, or each actor
    startup_overhead_s: float | None = None


def build_input(source: Path, rows: int, folder: Path) -> Path:
    """`rows` data rows of `source` (a TSV with a header), repeated as often as needed."""
    header, *lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    path = folder / f"agnews-{rows}.tsv"
    with open(path, "w", encoding="utf-8") as out:
        out.write(header)
        out.writelines(itertools.islice(itertools.cycle(lines), rows))
    return path


def clearpipe(*args: object) -> float:
    """Run `clearpipe predict ARGS` in a fresh process; its wall-clock seconds."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "clearpipe", "predict", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"clearpipe predict {' '.join(map(str, args))} failed:\n{done.stderr}")
    return seconds


def local_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def published_rows(folder: Path) -> tuple[list[dict], dict]:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rows = [
        json.loads(line)
        for part in manifest["parts"]
        for line in (folder / part["file"]).read_text(encoding="utf-8").splitlines()
    ]
    return rows, manifest


def compare(local: list[dict], ray: list[dict], label: str, score: str) -> tuple[bool, int, float | None]:
    differing = [b for a, b in zip(local, ray, strict=True) if a[label] != b[label]]
    closest = min((abs(r[score] - 0.5) for r in differing), default=None)
    return len(local) == len(ray) and not differing, len(differing), closest


def run_local(data: Path, out: Path, chunk_rows: int, rows: int) -> Result:
    seconds = clearpipe(data, "-o", out, "--chunk-rows", chunk_rows)
    # Only this child has finished so far, so the children's peak RSS is its own (KiB on Linux).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return Result(
        "local", rows, round(seconds, 2), round(rows / seconds, 1), 1.0, True, 0, None, [round(peak)]
    )


def run_ray(
    data: Path, out: Path, workers: int, chunk_rows: int, local: Result, expected: list[dict]
) -> Result:
    seconds = clearpipe(
        data,
        "-o",
        out,
        "--engine",
        "ray",
        "--workers",
        workers,
        "--output-format",
        "jsonl",
        "--chunk-rows",
        chunk_rows,
    )
    rows, manifest = published_rows(out)
    plan = manifest["plan"]
    equal, differing, closest = compare(expected, rows, plan["label_column"], plan["score_column"])
    rate = len(rows) / seconds
    peaks = [round(w["peak_rss_mib"]) for w in manifest["workers"]]
    return Result(
        f"ray --workers {workers}",
        len(rows),
        round(seconds, 2),
        round(rate, 1),
        round(rate / local.rows_per_s, 3),
        equal,
        differing,
        closest,
        peaks,
    )


def startup_overheads(
    source: Path, folder: Path, rows: int, workers: list[int], chunk_rows: int
) -> dict[str, float]:
    """Seconds each setting takes beyond the local engine on a few rows: starting Ray and the actors."""
    small = build_input(source, rows, folder / "small")
    local = clearpipe(small, "-o", folder / "small" / "local.jsonl", "--chunk-rows", chunk_rows)
    return {
        f"ray --workers {n}": round(
            clearpipe(small, "-o", folder / "small" / f"ray{n}", "--engine", "ray", "--workers", n) - local, 2
        )
        for n in workers
    }


def table(results: list[Result]) -> str:
    lines = [
        "| setting | rows | seconds | rows/s | x local | labels equal | peak RSS MiB (per actor) | start-up overhead s |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for r in results:
        equal = "yes" if r.labels_equal else f"no: {r.differing_rows} rows (closest tie {r.closest_tie:.2g})"
        overhead = "" if r.startup_overhead_s is None else f"{r.startup_overhead_s:.1f}"
        lines.append(
            f"| {r.setting} | {r.rows} | {r.seconds:.1f} | {r.rows_per_s:.0f} | {r.ratio_to_local:.2f} | {equal} "
            f"| {', '.join(map(str, r.peak_rss_mib))} | {overhead} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--chunk-rows", type=int, default=4096)
    parser.add_argument("--startup-rows", type=int, default=64)
    parser.add_argument("--data", type=Path, default=DATA / "agnews" / "test.tsv")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    workers = [int(n) for n in args.workers.split(",")]
    units = -(-args.rows // args.chunk_rows)
    if units < 2 * max(workers):  # a worker without a unit of its own only adds start-up time
        print(
            f"note: {units} units of {args.chunk_rows} rows for up to {max(workers)} workers; "
            "pass a smaller --chunk-rows to spread a small run",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(prefix="clearpipe-ray-bench-") as tmp:
        folder = Path(tmp)
        data = build_input(args.data, args.rows, folder)
        local = run_local(data, folder / "local.jsonl", args.chunk_rows, args.rows)
        expected = local_rows(folder / "local.jsonl")
        results = [local] + [
            run_ray(data, folder / f"ray{n}", n, args.chunk_rows, local, expected) for n in workers
        ]
        (folder / "small").mkdir()
        for result, overhead in zip(
            results[1:],
            startup_overheads(args.data, folder, args.startup_rows, workers, args.chunk_rows).values(),
            strict=True,
        ):
            result.startup_overhead_s = overhead
    print(f"{os.cpu_count()} CPUs, {args.rows} rows of {args.data.name}, --chunk-rows {args.chunk_rows}\n")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
