"""`clearpipe calibrate`, and calibration, thresholds and abstention in `classify`, `predict` and
`evaluate`, run as a user runs them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import clearpipe
from clearpipe.loading import DEFAULT_MODEL_DIR
from clearpipe.training.evaluation import evaluate_file
from cli.helpers import assert_user_error, run

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEV = ASSETS / "sst2_dev.tsv"  # 100 labelled rows


def _labelled(path: Path, rows: list[tuple[str, int]]) -> Path:
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows))
    return path


@pytest.mark.slow
def test_calibrate_writes_a_calibrated_copy(tiny_bert, tmp_path):
    out = tmp_path / "calibrated"
    done = run("calibrate", tiny_bert, DEV, "--output", out, "--method", "temperature")
    assert done.returncode == 0, done.stderr
    assert "fitted on" in done.stdout and "(100 rows)" in done.stdout and f"to {out}" in done.stdout
    saved = json.loads((out / "config.json").read_text())["clearpipe_calibration"]
    assert saved["method"] == "temperature" and saved["rows"] == 100 and saved["fitted_on"] == str(DEV)
    assert {"ece_before", "ece_after", "nll_before", "nll_after"} <= set(saved)
    assert saved["nll_after"] <= saved["nll_before"]
    assert "clearpipe_calibration" not in json.loads((tiny_bert / "config.json").read_text())
    assert clearpipe.load(out).settings.temperature.value == saved["temperature"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([("good", 1), ("bad", 0)] * 5, "10 labelled rows are too few to fit a temperature"),
        ([("good", 1)] * 60, "every row has the label 'positive'; a temperature needs at least two classes"),
    ],
)
def test_calibrate_refuses_data_it_cannot_fit_and_writes_nothing(tiny_bert, tmp_path, rows, why):
    out = tmp_path / "out"
    assert_user_error(run("calibrate", tiny_bert, _labelled(tmp_path / "d.tsv", rows), "-o", out), why)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.slow
def test_calibrate_refuses_a_multi_label_model_and_a_used_output(tiny_multi, tiny_bert, tmp_path):
    assert_user_error(run("calibrate", tiny_multi, DEV, "-o", tmp_path / "m"), "multi-label model")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    assert_user_error(run("calibrate", tiny_bert, DEV, "-o", tmp_path / "used"), "not an empty folder")
    assert (tmp_path / "used" / "keep.txt").read_text() == "mine"
    assert_user_error(run("calibrate", tiny_bert, DEV, "-o", tmp_path / "x", "--method", "platt"), "--method")


@pytest.mark.slow
def test_calibrate_runs_on_the_embedded_default_model(tmp_path):
    before = (DEFAULT_MODEL_DIR / "config.json").read_text()
    out = tmp_path / "default"
    done = run("calibrate", DEFAULT_MODEL_DIR, DEV, "--output", out, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "clearpipe_calibration" in json.loads((out / "config.json").read_text())
    assert "## Calibration" in (out / "README.md").read_text()
    assert "calibration" in json.loads((out / "metrics.json").read_text())
    assert (DEFAULT_MODEL_DIR / "config.json").read_text() == before


@pytest.mark.slow
def test_classify_min_score_and_no_calibration(tiny_calibrated):
    texts = ["the film was good", "bad"]
    done = run("classify", *texts, "--model", tiny_calibrated, "--json", "--min-score", "1")
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["decided"] for r in results] == [False, False]
    table = run("classify", *texts, "--model", tiny_calibrated, "--min-score", "1")
    assert "decision" in table.stdout and "not sure" in table.stdout
    raw = run(
        "classify", *texts, "--model", tiny_calibrated, "--json", "--no-calibration", "--dtype", "float32"
    )
    expected = clearpipe.load(tiny_calibrated, calibrated=False, dtype="float32")(texts)
    assert [json.loads(line)["score"] for line in raw.stdout.splitlines()] == pytest.approx(
        [e["score"] for e in expected], abs=1e-6
    )


@pytest.mark.slow
def test_classify_shows_which_labels_apply(tiny_multi):
    done = run("classify", "sports team win", "--model", tiny_multi, "--json", "--top-k", "all")
    assert done.returncode == 0, done.stderr
    ranked = json.loads(done.stdout)
    assert {r["label"] for r in ranked} == {"sports", "tech", "world"} and all("applies" in r for r in ranked)
    assert_user_error(run("classify", "x", "--model", tiny_multi, "--min-score", "0.5"), "threshold")


def test_predict_counts_abstentions(tiny_bert, tmp_path):
    out = tmp_path / "out.csv"
    done = run("predict", DEV, "--output", out, "--model", tiny_bert, "--min-score", "0.5")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert set(rows[0]) == {"sentence", "label", "predicted_label", "predicted_score", "predicted_decided"}
    undecided = sum(r["predicted_decided"] == "false" for r in rows)
    assert all((r["predicted_decided"] == "true") == (float(r["predicted_score"]) >= 0.5) for r in rows)
    assert f"{undecided} rows not decided (best score below --min-score 0.5)" in done.stderr


def test_predict_writes_the_labels_that_apply(tiny_multi, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["sports team win", "a film", ""]))
    out = tmp_path / "out.jsonl"
    done = run("predict", source, "--output", out, "--model", tiny_multi)
    assert done.returncode == 0, done.stderr
    thresholds = {"sports": 0.3, "tech": 0.5, "world": 0.7}
    clf = clearpipe.load(tiny_multi)
    expected = clf(["sports team win", "a film"], top_k=None)
    *rows, empty = [json.loads(line) for line in out.read_text().splitlines()]
    for row, ranked in zip(rows, expected, strict=True):
        assert set(row) == {"text", "label", "score", "labels"}
        assert row["labels"] == [r["label"] for r in ranked if r["score"] >= thresholds[r["label"]]]
    assert empty == {"text": "", "label": None, "score": None, "labels": None}  # nothing to label


@pytest.mark.slow
def test_evaluate_shows_trust(tiny_calibrated, tmp_path):
    # Two runs only: evaluate imports datasets, scikit-learn and matplotlib, slow on a busy machine.
    plots = tmp_path / "plots"
    done = run("evaluate", tiny_calibrated, DEV, "--plots", plots, "--target-accuracy", "0.99", timeout=600)
    assert done.returncode == 0, done.stderr
    assert "calibration: temperature 2.500: ECE" in done.stdout and "Brier" in done.stdout
    assert "accuracy at coverage:" in done.stdout and "at 90%" in done.stdout and "at 80%" in done.stdout
    assert "target accuracy 0.99:" in done.stdout
    assert (plots / "reliability.png").stat().st_size > 0 and (plots / "risk_coverage.png").stat().st_size > 0
    result = json.loads(
        run("evaluate", tiny_calibrated, DEV, "--json", "--target-accuracy", "0.5", timeout=600).stdout
    )
    assert result["calibration"] == {"method": "temperature", "temperature": 2.5}
    assert set(result["uncalibrated"]) == {"ece", "log_loss", "brier"} and 0 <= result["brier"] <= 1
    assert set(result["trust"]["accuracy_at_coverage"]) == {"90%", "80%"}
    assert result["target"]["reached"]["accuracy"] >= 0.5
    # The raw figures are those of the model loaded without its temperature (--no-calibration).
    raw, _ = evaluate_file(clearpipe.load(tiny_calibrated, calibrated=False), DEV)
    assert raw.calibration is None and raw.ece == pytest.approx(result["uncalibrated"]["ece"], abs=1e-6)
    assert raw.accuracy == result["accuracy"]
    assert_user_error(run("evaluate", tiny_calibrated, DEV, "--target-accuracy", "2"), "--target-accuracy")
