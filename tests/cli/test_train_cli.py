"""`clearpipe train` and `clearpipe evaluate` end to end, as a user runs them, and under torchrun."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_bases import word_base

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "tests" / "assets"
SST2 = ASSETS / "sst2_train.tsv"
FAST = ["--batch-size", "16", "--max-length", "32", "--no-bf16", "--patience", "0", "--learning-rate", "5e-3"]


def env() -> dict[str, str]:
    paths = [str(ROOT / "src"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


def clearpipe(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clearpipe", *map(str, args)],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory, minilm_dir) -> Path:
    return word_base(tmp_path_factory.mktemp("cli-base"), minilm_dir)


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    output = tmp_path_factory.mktemp("cli-train") / "model"
    done = clearpipe(
        "train", SST2, "--validation", SST2, "--base", base, "--output", output,
        "--label-names", "negative,positive", "--epochs", "4", *FAST,
    )  # fmt: skip
    return output, done


@pytest.mark.slow
def test_train_prints_report_table_and_flow(trained):
    output, done = trained
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert 'columns text "sentence", label "label"' in out
    assert "300 rows read, 300 used (negative 128, positive 172)" in out
    assert "tokens per row:" in out and "max length 32" in out
    header = out.splitlines().index(
        next(line for line in out.splitlines() if line.lstrip().startswith("epoch"))
    )
    assert [line.split()[0] for line in out.splitlines()[header + 1 : header + 5]] == ["1", "2", "3", "4"]
    assert (
        "data flow:" in out
        and "16 x " in out
        and "16 x 2 per batch (batch x labels), 300 x 2 on the validation set" in out
    )
    assert "Loading weights" not in done.stderr and "Writing model shards" not in done.stderr
    assert (output / "model.safetensors").is_file() and (output / "README.md").is_file()


@pytest.mark.slow
def test_evaluate_json_goes_through_the_classifier(trained):
    output, _ = trained
    done = clearpipe("evaluate", output, SST2, "--json", "--errors", "3")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rows"] == 300 and result["labels"] == ["negative", "positive"]
    assert result["accuracy"] > 0.8
    assert set(result["per_class"]) == {"negative", "positive"}
    assert 0 <= result["ece"] <= 1 and result["log_loss"] > 0 and 0.5 < result["roc_auc"] <= 1
    assert len(result["errors"]) == min(3, round(300 * (1 - result["accuracy"])))
    # Same figures as the training run's own final evaluation (one engine).
    metrics = json.loads((output / "metrics.json").read_text())["validation"]
    assert result["accuracy"] == pytest.approx(metrics["accuracy"])


@pytest.mark.slow
def test_evaluate_table(trained):
    output, _ = trained
    done = clearpipe("evaluate", output, ASSETS / "sst2_dev.tsv", "--errors", "2")
    assert done.returncode == 0, done.stderr
    assert "100 rows: accuracy" in done.stdout
    assert "confusion" in done.stdout and "2 most confident mistakes" in done.stdout


@pytest.mark.slow
def test_malformed_file_is_one_error_line(tmp_path, base):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\ngood,1\nbad,0,extra\n")
    done = clearpipe("train", bad, "--base", base, "--output", tmp_path / "out")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"clearpipe: error: {bad}, row 2: has 3 fields but the header has 2 (text, label)"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_refuses_a_non_empty_output(tmp_path, base):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    done = clearpipe("train", SST2, "--base", base, "--output", tmp_path / "out")
    assert done.returncode == 2 and "is not empty" in done.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, base):
    output = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "clearpipe", "train", str(SST2), "--base", str(base), "--output", str(output),
        "--epochs", "1", *FAST,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    resolved = json.loads((output / "training_config.json").read_text())["resolved"]
    assert resolved["world_size"] == 2
    trace = json.loads((output / "trace.json").read_text())
    # 270 training rows, 16 per process per step, 2 processes.
    assert trace["optimizer_steps"] == math.ceil(270 / 32)
    assert done.stdout.count("tokens per row:") == 1  # only the main process reports


@pytest.mark.slow
def test_train_calibrates_by_default_and_evaluate_shows_it(trained):
    output, done = trained
    assert "calibrated: temperature" in done.stdout
    assert "clearpipe_calibration" in json.loads((output / "config.json").read_text())
    shown = clearpipe("evaluate", output, ASSETS / "sst2_dev.tsv")
    assert shown.returncode == 0, shown.stderr
    assert "calibration: temperature" in shown.stdout and "accuracy at coverage:" in shown.stdout


@pytest.mark.slow
def test_no_calibrate_leaves_the_scores_raw(tmp_path, base):
    output = tmp_path / "raw"
    done = clearpipe(
        "train", SST2, "--validation", SST2, "--base", base, "--output", output, "--epochs", "1",
        "--max-steps", "2", "--no-calibrate", *FAST,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "calibrated:" not in done.stdout
    assert "clearpipe_calibration" not in json.loads((output / "config.json").read_text())
    assert "calibration" not in json.loads((output / "metrics.json").read_text())


FAIL_AFTER_SAVE = """
import sys
import clearpipe.training.train as run

def fail(*args, **kwargs):
    raise RuntimeError("failed after the model was saved")

run._calibrate = fail  # the step right after the model is written into --output
from clearpipe.cli.app import main

sys.argv = ["clearpipe", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_a_failed_run_leaves_nothing_that_looks_like_a_model(tmp_path, tiny_bert):
    output = tmp_path / "model"
    args = ["train", SST2, "--base", tiny_bert, "-o", output, "--label-names", "negative,positive"]
    done = subprocess.run(
        [sys.executable, "-c", FAIL_AFTER_SAVE, *map(str, args), "--epochs", "1", *FAST],
        capture_output=True,
        text=True,
        env=env(),
        timeout=300,
    )
    assert done.returncode == 1 and "failed after the model was saved" in done.stderr
    assert not (output / "config.json").exists() and not list(output.glob("*.safetensors"))
    assert [p.name for p in output.iterdir()] == ["checkpoints"]  # kept for --resume
