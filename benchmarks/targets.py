"""The speed targets, checked against one run of `benchmarks/throughput.py`.

    PYTHONPATH=src python benchmarks/targets.py RUN.json

`throughput.py` prints these lines after its table; this script prints them again for a saved
`--json` file, so that a run can be judged later. The pipeline targets' ratios are against the
best fp32 transformers.pipeline setting measured in the same run; next to each target stands the
ceiling of that run (every FLOP at the measured matrix-multiply rate), which says whether the
machine allows the target at all. The rival targets' ratios are against the fastest rival of the
same run (any
setting that is not clearpipe's: the pipelines, OpenVINO, CTranslate2) whose label agreement
with fp32 reaches the target's bar. `train_line` judges a `train_speed.py` run. The exit status
is 0 whatever is met: this is a report, not a test.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

# The fastest explicit mode may be any of these, as long as its agreement holds.
FASTEST = ("clearpipe-int8", "clearpipe-onnx", "clearpipe-onnx-int8")
# "Flat" memory: ten times the rows may cost at most this much more peak RSS.
FLAT_RSS = 1.25


@dataclass(frozen=True)
class Speed:
    """At least `ratio` times the best pipeline on `dataset`, at `agreement` with fp32 or more."""

    name: str
    settings: tuple[str, ...]
    dataset: str
    ratio: float
    agreement: float
    ceiling_dtype: str


SPEEDS = (
    Speed("default settings", ("clearpipe-default",), "sst2", 6.0, 0.995, "bfloat16"),
    Speed("default settings", ("clearpipe-default",), "agnews", 4.0, 0.995, "bfloat16"),
    Speed("fp32 path", ("clearpipe-fp32",), "sst2", 1.8, 0.995, "float32"),
    Speed("fp32 path", ("clearpipe-fp32",), "agnews", 1.8, 0.995, "float32"),
    Speed("fastest explicit mode", FASTEST, "sst2", 8.0, 0.99, "int8"),
    Speed("fastest explicit mode", FASTEST, "agnews", 6.0, 0.99, "int8"),
)
MIN_MFU = 0.5  # of the default path, against the measured rate of its own number format

# Against the rivals, any clearpipe setting may be the fastest explicit mode, the backends to come
# included.
EXPLICIT = (
    "clearpipe-default",
    "clearpipe-fp32",
    *FASTEST,
    "clearpipe-openvino",
    "clearpipe-openvino-int8",
    "clearpipe-lite-openvino-int8",
    "clearpipe-lite-openvino-int8-dynamic",
)


@dataclass(frozen=True)
class RivalTarget:
    """At least `ratio` times the fastest rival at `agreement` on `dataset`, with `agreement`
    itself and, where `max_rss_mb` is set, at most that peak RSS."""

    name: str
    settings: tuple[str, ...]
    dataset: str
    ratio: float
    agreement: float
    max_rss_mb: float | None = None


RIVAL_TARGETS = (
    RivalTarget("default settings", ("clearpipe-default",), "sst2", 1.3, 0.995),
    RivalTarget("default settings", ("clearpipe-default",), "agnews", 1.3, 0.995),
    RivalTarget("fastest explicit mode", EXPLICIT, "sst2", 1.2, 0.99, 500.0),
    RivalTarget("fastest explicit mode", EXPLICIT, "agnews", 1.2, 0.99, 500.0),
)
TRAIN_RATIO = 2.0  # clearpipe train's rows/s over the tutorial recipe's
TRAIN_ACCURACY_POINTS = 0.3  # at most this many accuracy points below the recipe


def _rows(run: dict) -> dict[tuple[str, str], dict]:
    return {(r["setting"], r["dataset"]): r for r in run["results"]}


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[met]


def speed_line(run: dict, target: Speed) -> str:
    """One speed target: the best qualifying setting of the run, its ratio and the ceiling.

    >>> speed_line({"results": [], "ceilings": {}}, SPEEDS[0])
    '- default settings, sst2: at least 6.0x at >= 99.5% agreement: not measured'
    """
    rows = _rows(run)
    head = f"- {target.name}, {target.dataset}: at least {target.ratio:.1f}x at >= {target.agreement:.1%} agreement"
    measured = [(s, rows[(s, target.dataset)]) for s in target.settings if (s, target.dataset) in rows]
    if not measured:
        return f"{head}: {_verdict(None)}"
    qualifying = [(s, r) for s, r in measured if r["label_agreement"] >= target.agreement]
    setting, row = max(qualifying or measured, key=lambda sr: sr[1]["ratio"])
    met = bool(qualifying) and row["ratio"] >= target.ratio
    ceiling = run.get("ceilings", {}).get(target.dataset, {}).get(target.ceiling_dtype)
    cap = f"; ceiling {ceiling['ratio']:.2f}x in {target.ceiling_dtype}" if ceiling else ""
    return f"{head}: {_verdict(met)} ({setting} {row['ratio']:.2f}x at {row['label_agreement']:.2%}{cap})"


def mfu_lines(run: dict) -> list[str]:
    """Model FLOP utilization of the default path on each dataset, against `MIN_MFU`.

    >>> mfu_lines({"results": [{"setting": "clearpipe-default", "dataset": "sst2", "mfu": 0.6}]})
    ['- default path MFU, sst2: at least 50%: met (60%)']
    """
    lines = []
    for (setting, dataset), row in _rows(run).items():
        if setting == "clearpipe-default":
            mfu = row.get("mfu")
            met = None if mfu is None else mfu >= MIN_MFU
            shown = "" if mfu is None else f" ({mfu:.0%})"
            lines.append(f"- default path MFU, {dataset}: at least {MIN_MFU:.0%}: {_verdict(met)}{shown}")
    return lines


def memory_line(run: dict) -> str:
    """`clearpipe predict`'s peak RSS at the largest table against the smallest.

    >>> memory_line({"predict_rss": {"10000": {"peak_rss_mb": 800}, "100000": {"peak_rss_mb": 850}}})
    '- predict memory flat (100,000 rows within 1.25x of 10,000): met (850 against 800 MB)'
    """
    sizes = {int(rows): r["peak_rss_mb"] for rows, r in run.get("predict_rss", {}).items()}
    if len(sizes) < 2:
        return "- predict memory flat: not measured"
    small, large = min(sizes), max(sizes)
    met = sizes[large] <= FLAT_RSS * sizes[small]
    return (
        f"- predict memory flat ({large:,} rows within {FLAT_RSS}x of {small:,}): {_verdict(met)} "
        f"({sizes[large]:.0f} against {sizes[small]:.0f} MB)"
    )


def cold_start_line(run: dict) -> str:
    """`clearpipe classify "x"` no slower than the transformers.pipeline script.

    >>> cold_start_line({"cold_start_s": {"clearpipe classify": 3.0, "transformers.pipeline script": 4.0}})
    '- cold start no slower than the pipeline script: met (3.00 against 4.00 s)'
    """
    times = run.get("cold_start_s")
    if not times:
        return "- cold start: not measured"
    ours, theirs = times["clearpipe classify"], times["transformers.pipeline script"]
    return (
        f"- cold start no slower than the pipeline script: {_verdict(ours <= theirs)} "
        f"({ours:.2f} against {theirs:.2f} s)"
    )


def is_rival(setting: str) -> bool:
    """Whether a benchmark setting is a rival of clearpipe's (every one not named clearpipe-...).

    >>> is_rival("openvino-int8"), is_rival("clearpipe-int8")
    (True, False)
    """
    return not setting.startswith("clearpipe")


def fastest_rival(run: dict, dataset: str, bar: float) -> tuple[str, dict] | None:
    """The fastest rival's (setting, row) on `dataset` among those agreeing with fp32 on at
    least `bar` of the labels; None when no rival reaches the bar.

    >>> fastest_rival({"results": [{"setting": "openvino", "dataset": "sst2", "texts_per_s": 400.0,
    ...     "label_agreement": 1.0}]}, "sst2", 0.995)[0]
    'openvino'
    """
    rivals = [
        (s, r)
        for (s, d), r in _rows(run).items()
        if d == dataset and is_rival(s) and r["label_agreement"] >= bar
    ]
    return max(rivals, key=lambda sr: sr[1]["texts_per_s"], default=None)


def _qualifies(row: dict, target: RivalTarget) -> bool:
    if row["label_agreement"] < target.agreement:
        return False
    return target.max_rss_mb is None or row["peak_rss_mb"] <= target.max_rss_mb


def rival_line(run: dict, target: RivalTarget) -> str:
    """One rival target: the fastest qualifying clearpipe setting against the fastest rival at
    the same agreement bar (not measured when either is missing).

    >>> rival_line({"results": []}, RIVAL_TARGETS[0])
    '- default settings, sst2: at least 1.3x the fastest rival at >= 99.5% agreement: not measured'
    """
    memory = f", peak RSS <= {target.max_rss_mb:.0f} MB" if target.max_rss_mb else ""
    head = (
        f"- {target.name}, {target.dataset}: at least {target.ratio:.1f}x the fastest rival "
        f"at >= {target.agreement:.1%} agreement{memory}"
    )
    rows = _rows(run)
    measured = [(s, rows[(s, target.dataset)]) for s in target.settings if (s, target.dataset) in rows]
    rival = fastest_rival(run, target.dataset, target.agreement)
    if rival is None or not measured:
        return f"{head}: {_verdict(None)}"
    qualifying = [(s, r) for s, r in measured if _qualifies(r, target)]
    setting, row = max(qualifying or measured, key=lambda sr: sr[1]["texts_per_s"])
    ratio = row["texts_per_s"] / rival[1]["texts_per_s"]
    met = bool(qualifying) and ratio >= target.ratio
    rss = f", {row['peak_rss_mb']:.0f} MB" if target.max_rss_mb else ""
    return (
        f"{head}: {_verdict(met)} ({setting} {ratio:.2f}x at {row['label_agreement']:.2%}{rss}; "
        f"fastest rival {rival[0]} {rival[1]['texts_per_s']:.0f} texts/s at {rival[1]['label_agreement']:.2%})"
    )


def train_line(speed: dict) -> str:
    """The training speed target for one `train_speed.py` run: `clearpipe train` at least
    `TRAIN_RATIO` times the recipe's rows/s, its accuracy at most `TRAIN_ACCURACY_POINTS` below.

    >>> print(train_line({"clearpipe": {"rows_per_s": 50.0, "accuracy": 0.90},
    ...                   "recipe": {"rows_per_s": 20.0, "accuracy": 0.901}}))
    - clearpipe train at least 2.0x the recipe's rows/s, accuracy within 0.3 points: met (2.50x, -0.10 points)
    """
    ours, theirs = speed.get("clearpipe"), speed.get("recipe")
    head = (
        f"- clearpipe train at least {TRAIN_RATIO:.1f}x the recipe's rows/s, "
        f"accuracy within {TRAIN_ACCURACY_POINTS} points"
    )
    if not ours or not theirs:
        return f"{head}: {_verdict(None)}"
    ratio = ours["rows_per_s"] / theirs["rows_per_s"]
    points = 100 * (ours["accuracy"] - theirs["accuracy"])
    met = ratio >= TRAIN_RATIO and points >= -TRAIN_ACCURACY_POINTS
    return f"{head}: {_verdict(met)} ({ratio:.2f}x, {points:+.2f} points)"


def pipeline_report(run: dict) -> str:
    """Every target against the best fp32 transformers.pipeline, a line each, for one run's JSON.

    >>> print(pipeline_report({"results": []}).splitlines()[0])
    Targets against the best fp32 pipeline of this run:
    """
    lines = [speed_line(run, target) for target in SPEEDS]
    lines += [*mfu_lines(run), memory_line(run), cold_start_line(run)]
    return "Targets against the best fp32 pipeline of this run:\n" + "\n".join(lines)


def rival_report(run: dict) -> str:
    """Every inference target against the fastest rival, a line each, for one run's JSON.

    >>> print(rival_report({"results": []}).splitlines()[0])
    Targets against the fastest rival of this run at each agreement bar:
    """
    lines = [rival_line(run, target) for target in RIVAL_TARGETS]
    return "Targets against the fastest rival of this run at each agreement bar:\n" + "\n".join(lines)


def report(run: dict) -> str:
    """The targets against the pipeline, then those against the rivals, for one run's JSON."""
    return pipeline_report(run) + "\n\n" + rival_report(run)


def load_run(path: Path) -> dict:
    """A saved `throughput.py --json` run; a missing, unreadable or foreign file exits with why.

    >>> load_run(Path("missing.json"))  # doctest: +SKIP
    SystemExit: targets: cannot read missing.json: No such file or directory
    """
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        sys.exit(f"targets: cannot read {path}: {exc.strerror or exc}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        sys.exit(f"targets: {path} is not JSON: {exc}")
    if not isinstance(run, dict) or not isinstance(run.get("results"), list):
        sys.exit(f"targets: {path} has no 'results' list: not a `throughput.py --json` run")
    return run


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.splitlines()[2].strip())
    print(report(load_run(Path(sys.argv[1]))))
