"""`benchmarks/targets.py`: the speed targets (against the fp32 pipeline and against the fastest
rival) judged from a saved benchmark run."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "targets.py"
spec = importlib.util.spec_from_file_location("benchmark_targets", SCRIPT)
targets = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = targets  # dataclasses look their module up there
spec.loader.exec_module(targets)


def row(setting: str, dataset: str, ratio: float, agreement: float = 1.0, mfu: float | None = None) -> dict:
    return {"setting": setting, "dataset": dataset, "ratio": ratio, "label_agreement": agreement, "mfu": mfu}


def verdict(line: str) -> str:
    return re.search(r": (NOT met|not measured|met)( \(|$)", line).group(1)


def run(*rows: dict, **extra) -> dict:
    ceilings = {d: {t: {"ratio": 10.0} for t in ("bfloat16", "float32", "int8")} for d in ("sst2", "agnews")}
    return {"results": list(rows), "ceilings": ceilings} | extra


def test_a_run_that_meets_every_target_says_met_on_every_line():
    rows = [row("clearpipe-default", "sst2", 6.1, mfu=0.6), row("clearpipe-default", "agnews", 4.5, mfu=0.7)]
    rows += [row("clearpipe-fp32", d, 2.0) for d in ("sst2", "agnews")]
    rows += [row("clearpipe-int8", "sst2", 8.2), row("clearpipe-int8", "agnews", 6.5, 0.999)]
    rss = {"10000": {"peak_rss_mb": 800.0}, "100000": {"peak_rss_mb": 900.0}}
    cold = {"clearpipe classify": 3.0, "transformers.pipeline script": 4.0}
    lines = targets.pipeline_report(run(*rows, predict_rss=rss, cold_start_s=cold)).splitlines()[1:]
    assert len(lines) == 10
    assert [verdict(line) for line in lines] == ["met"] * 10, lines


def test_a_ratio_under_its_target_is_not_met_and_names_the_ceiling():
    line = targets.speed_line(run(row("clearpipe-default", "sst2", 4.42)), targets.SPEEDS[0])
    assert "NOT met (clearpipe-default 4.42x at 100.00%; ceiling 10.00x in bfloat16)" in line


def test_the_fastest_mode_takes_the_fastest_setting_whose_agreement_holds():
    rows = [row("clearpipe-int8", "sst2", 8.1, 0.999), row("clearpipe-onnx-int8", "sst2", 9.0, 0.985)]
    line = targets.speed_line(run(*rows), targets.SPEEDS[4])
    assert ": met (clearpipe-int8 8.10x" in line


def test_speed_without_agreement_is_not_met():
    line = targets.speed_line(run(row("clearpipe-onnx-int8", "sst2", 9.0, 0.985)), targets.SPEEDS[4])
    assert ": NOT met (clearpipe-onnx-int8 9.00x at 98.50%" in line


@pytest.mark.parametrize(
    ("rss", "expected"),
    [({"10000": {"peak_rss_mb": 800.0}, "100000": {"peak_rss_mb": 1500.0}}, "NOT met"), ({}, "not measured")],
)
def test_memory_that_grows_with_the_rows_is_not_flat(rss, expected):
    assert verdict(targets.memory_line({"predict_rss": rss})) == expected


def test_a_slower_cold_start_is_not_met():
    cold = {"clearpipe classify": 4.5, "transformers.pipeline script": 4.0}
    assert "NOT met (4.50 against 4.00 s)" in targets.cold_start_line({"cold_start_s": cold})


def test_the_script_judges_a_saved_run(tmp_path):
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(run(row("clearpipe-fp32", "agnews", 1.5))), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(saved)], capture_output=True, text=True, check=True
    )
    assert "- fp32 path, agnews: at least 1.8x at >= 99.5% agreement: NOT met" in result.stdout
    assert "- default settings, sst2: at least 6.0x at >= 99.5% agreement: not measured" in result.stdout
    assert "Targets against the fastest rival of this run" in result.stdout
    assert "- default settings, agnews: at least 1.3x the fastest rival" in result.stdout


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ('{"results": {}}', "has no 'results' list"),
        ("[1, 2]", "has no 'results' list"),
    ],
)
def test_a_file_that_is_not_a_run_exits_with_why(tmp_path, content, why):
    saved = tmp_path / "run.json"
    if content is not None:
        saved.write_text(content, encoding="utf-8")
    result = subprocess.run([sys.executable, str(SCRIPT), str(saved)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("targets: ") and str(saved) in result.stderr
    assert why in result.stderr and "Traceback" not in result.stderr


# --- Against the fastest rival of the run at the target's agreement bar --------------------------
def timed(setting: str, dataset: str, texts_per_s: float, agreement: float = 1.0, rss: float = 400.0) -> dict:
    return {
        "setting": setting,
        "dataset": dataset,
        "texts_per_s": texts_per_s,
        "label_agreement": agreement,
        "peak_rss_mb": rss,
    }


RIVALS = [
    timed("pipeline-b32", "sst2", 120.0),
    timed("openvino", "sst2", 400.0),
    timed("openvino-int8", "sst2", 640.0, 0.992),
    timed("ctranslate2-int8", "sst2", 600.0, 0.998, 166.0),
]


def test_the_fastest_rival_is_the_fastest_that_reaches_the_bar():
    assert targets.fastest_rival(run(*RIVALS), "sst2", 0.995)[0] == "ctranslate2-int8"
    assert targets.fastest_rival(run(*RIVALS), "sst2", 0.99)[0] == "openvino-int8"
    assert targets.fastest_rival(run(*RIVALS), "sst2", 1.0)[0] == "openvino"
    assert targets.fastest_rival(run(*RIVALS), "agnews", 0.99) is None


def test_clearpipe_settings_are_never_rivals():
    rows = [*RIVALS, timed("clearpipe-int8", "sst2", 5000.0)]
    assert targets.fastest_rival(run(*rows), "sst2", 0.99)[0] == "openvino-int8"


def test_the_default_is_measured_against_the_rival_at_its_own_bar():
    line = targets.rival_line(
        run(*RIVALS, timed("clearpipe-default", "sst2", 790.0)), targets.RIVAL_TARGETS[0]
    )
    # 790 / 600 (CTranslate2, the fastest at >= 99.5%): openvino-int8's 640 is below the bar.
    assert verdict(line) == "met"
    assert (
        "(clearpipe-default 1.32x at 100.00%; fastest rival ctranslate2-int8 600 texts/s at 99.80%)" in line
    )


def test_a_default_short_of_the_ratio_is_not_met():
    line = targets.rival_line(
        run(*RIVALS, timed("clearpipe-default", "sst2", 700.0)), targets.RIVAL_TARGETS[0]
    )
    assert verdict(line) == "NOT met" and "1.17x" in line


def test_a_default_below_the_agreement_bar_is_not_met_however_fast():
    rows = [*RIVALS, timed("clearpipe-default", "sst2", 2000.0, 0.99)]
    assert verdict(targets.rival_line(run(*rows), targets.RIVAL_TARGETS[0])) == "NOT met"


def test_the_fastest_explicit_mode_must_fit_in_the_memory_bound():
    fast_but_large = timed("clearpipe-int8", "sst2", 900.0, 0.999, rss=834.0)
    small = timed("clearpipe-onnx-int8", "sst2", 780.0, 0.995, rss=480.0)
    line = targets.rival_line(run(*RIVALS, fast_but_large, small), targets.RIVAL_TARGETS[2])
    assert verdict(line) == "met"  # 780 / 640 = 1.22x, the 900 texts/s one is over 500 MB
    assert "(clearpipe-onnx-int8 1.22x at 99.50%, 480 MB; fastest rival openvino-int8 640" in line


def test_an_explicit_mode_only_over_the_memory_bound_is_not_met_and_shows_its_memory():
    line = targets.rival_line(
        run(*RIVALS, timed("clearpipe-int8", "sst2", 900.0, 0.999, rss=834.0)), targets.RIVAL_TARGETS[2]
    )
    assert verdict(line) == "NOT met" and "834 MB" in line


@pytest.mark.parametrize("rows", [RIVALS, [timed("clearpipe-default", "sst2", 900.0)]])
def test_without_a_rival_or_a_clearpipe_setting_nothing_is_measured(rows):
    assert verdict(targets.rival_line(run(*rows), targets.RIVAL_TARGETS[0])) == "not measured"


def test_a_run_that_beats_every_rival_target_says_met_on_every_line():
    rows = [
        timed(r["setting"], d, r["texts_per_s"], r["label_agreement"])
        for r in RIVALS
        for d in ("sst2", "agnews")
    ]
    rows += [timed("clearpipe-default", d, 800.0, 0.999, rss=600.0) for d in ("sst2", "agnews")]
    rows += [timed("clearpipe-onnx-int8", d, 800.0, 0.995, rss=450.0) for d in ("sst2", "agnews")]
    lines = targets.rival_report(run(*rows)).splitlines()[1:]
    assert [verdict(line) for line in lines] == ["met"] * 4, lines


@pytest.mark.parametrize(
    ("ours", "expected"),
    [
        ({"rows_per_s": 41.0, "accuracy": 0.899}, "met"),
        ({"rows_per_s": 39.0, "accuracy": 0.91}, "NOT met"),  # too slow
        ({"rows_per_s": 80.0, "accuracy": 0.895}, "NOT met"),  # 0.5 points worse
        (None, "not measured"),
    ],
)
def test_training_speed_needs_both_the_ratio_and_the_accuracy(ours, expected):
    speed = {"clearpipe": ours, "recipe": {"rows_per_s": 20.0, "accuracy": 0.90}}
    assert verdict(targets.train_line(speed)) == expected
