"""Temperature scaling: the fit recovers a known temperature, labels never change, the saved key
round-trips through config.json into every score, and bad data is refused with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from transformers import pipeline

import clearpipe
from clearpipe.postprocess import Temperature, saved_temperature
from clearpipe.training.calibration import (
    MIN_ROWS,
    Calibration,
    at_bound,
    calibrate_split,
    check_output,
    fit,
    fit_margin_temperature,
    fit_temperature,
    nll,
    write_calibrated_copy,
)
from clearpipe.training.data import Split

ASSETS = Path(__file__).parents[1] / "assets"


def sample(temperature: float, rows: int = 20_000, labels: int = 3, seed: int = 0):
    """Logits, and labels drawn from softmax(logits / temperature): a model `temperature` too sure."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(rows, labels)) * 4
    probs = np.exp(logits / temperature)
    probs /= probs.sum(axis=1, keepdims=True)
    y = (probs.cumsum(axis=1) > rng.uniform(size=(rows, 1))).argmax(axis=1)
    return logits, y


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_the_fit_recovers_the_temperature_the_labels_were_drawn_at(temperature):
    logits, y = sample(temperature)
    assert fit_temperature(logits, y) == pytest.approx(temperature, rel=0.05)


def test_auto_keeps_plain_temperature_when_the_margin_power_does_not_help():
    logits, y = sample(2.0, rows=5000)
    result = fit(logits, y, "synthetic")
    assert result.scaling.power == 1.0 and result.temperature == pytest.approx(2.0, rel=0.08)
    assert set(result.held_out_nll) == {"temperature", "margin_temperature"}
    assert result.ece_after < result.ece_before and result.nll_after < result.nll_before


def test_auto_picks_the_margin_temperature_where_held_out_rows_say_it_is_better():
    # Confidence that should grow with the square of the margin: a power of 2, which one
    # temperature cannot express.
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5000, 2)) * 2
    gap = logits[:, 1] - logits[:, 0]
    p1 = 1 / (1 + np.exp(-np.sign(gap) * gap**2 / 3))
    y = (rng.uniform(size=5000) < p1).astype(int)
    result = fit(logits, y, "synthetic")
    assert result.scaling.power == pytest.approx(2.0, rel=0.15) and result.scaling.value == pytest.approx(
        3.0, rel=0.2
    )
    assert result.held_out_nll["margin_temperature"] < result.held_out_nll["temperature"]
    assert fit_margin_temperature(logits, y).power == pytest.approx(result.scaling.power)
    assert fit(logits, y, "synthetic", method="temperature").scaling.power == 1.0


def test_auto_keeps_plain_temperature_when_the_margin_fit_runs_into_a_bound():
    # Confidence growing with the margin's fourth power over 100: the best margin temperature
    # lies beyond the searched T <= 20, so the fit stops on the bound and is not trusted.
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5000, 2)) * 2
    gap = logits[:, 1] - logits[:, 0]
    y = (rng.uniform(size=5000) < 1 / (1 + np.exp(-np.sign(gap) * gap**4 / 100))).astype(int)
    assert at_bound(fit(logits, y, "synthetic", method="margin_temperature").scaling)
    result = fit(logits, y, "synthetic")
    assert result.held_out_nll["margin_temperature"] < result.held_out_nll["temperature"]
    assert result.scaling == Temperature(round(fit_temperature(logits, y), 6))
    # The record says why the method that won the comparison is not the one applied.
    assert result.to_dict()["rejected"].startswith(
        "margin temperature not used: its fit ran into a bound (T 20"
    )
    assert "ran into a bound" in result.summary()
    assert "rejected" not in fit(logits, y, "synthetic", method="temperature").to_dict()


def test_labels_are_identical_before_and_after(tiny_bert, tmp_path):
    logits, y = sample(3.0, rows=2000, labels=4)
    for method in ("temperature", "margin_temperature"):
        scaling = fit(logits, y, "synthetic", method).scaling
        assert np.array_equal(scaling.apply(logits).argmax(axis=1), logits.argmax(axis=1))
    split = Split("validation", "sst2_dev.tsv", *_rows(ASSETS / "sst2_dev.tsv"))
    raw = clearpipe.load(tiny_bert, calibrated=False)
    calibration = calibrate_split(raw, split, "sst2_dev.tsv")
    copy = write_calibrated_copy(raw.source, tmp_path / "calibrated", calibration)
    texts = split.items
    assert [r["label"] for r in clearpipe.load(copy)(texts)] == [r["label"] for r in raw(texts)]


def test_the_saved_key_round_trips_and_every_score_uses_it(tiny_bert, tmp_path):
    calibration = Calibration(Temperature(2.5), "dev.tsv", 100, 0.1, 0.02, 0.5, 0.4)
    copy = write_calibrated_copy(str(tiny_bert), tmp_path / "out", calibration)
    config = json.loads((copy / "config.json").read_text())
    assert config["clearpipe_calibration"] == calibration.to_dict()
    assert config["clearpipe_calibration"]["method"] == "temperature"
    assert config["id2label"] == json.loads((tiny_bert / "config.json").read_text())["id2label"]
    clf = clearpipe.load(copy)
    assert clf.settings.temperature == saved_temperature(clf.model.config) == Temperature(2.5)
    texts = ["the film was good", "bad"]
    logits = clf.logits(clf.tokenize(texts))
    expected = np.exp(logits / 2.5) / np.exp(logits / 2.5).sum(axis=1, keepdims=True)
    assert np.allclose(clf.predict(texts).scores, expected)
    assert clearpipe.load(copy, calibrated=False).settings.temperature is None


def test_a_calibrated_folder_still_loads_in_transformers_pipeline(tiny_calibrated, tiny_bert):
    theirs = pipeline("text-classification", model=str(tiny_calibrated))(["the film was good"], top_k=None)[0]
    raw = clearpipe.load(tiny_calibrated, calibrated=False, dtype="float32")("the film was good", top_k=None)
    # transformers ignores the key: its scores are clearpipe's raw softmax, not the calibrated ones.
    assert [t["label"] for t in theirs] == [r["label"] for r in raw]
    assert [t["score"] for t in theirs] == pytest.approx([r["score"] for r in raw], abs=1e-5)
    calibrated = clearpipe.load(tiny_calibrated, dtype="float32")("the film was good", top_k=None)
    assert calibrated[0]["score"] != pytest.approx(raw[0]["score"], abs=1e-4)


def test_too_few_rows_or_one_class_are_refused_with_the_reason(tiny_bert):
    clf = clearpipe.load(tiny_bert, calibrated=False)
    few = Split("validation", "few.tsv", ["good"] * 10, [0, 1] * 5, list(range(1, 11)))
    with pytest.raises(clearpipe.InputError, match=rf"10 labelled rows are too few.*at least {MIN_ROWS}"):
        calibrate_split(clf, few, "few.tsv")
    one = Split("validation", "one.tsv", ["good"] * 80, [1] * 80, list(range(1, 81)))
    with pytest.raises(clearpipe.InputError, match=r"every row has the label 'positive'.*two classes"):
        calibrate_split(clf, one, "one.tsv")


def test_multi_label_models_are_refused(tiny_multi):
    split = Split("validation", "m.tsv", ["good"] * 60, [[0]] * 60, list(range(1, 61)))
    with pytest.raises(clearpipe.InputError, match=r"multi-label model.*threshold"):
        calibrate_split(clearpipe.load(tiny_multi), split, "m.tsv")


def test_an_output_folder_that_holds_anything_is_refused(tiny_bert, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(clearpipe.InputError, match="not an empty folder"):
        check_output(str(tiny_bert), tmp_path / "full")
    with pytest.raises(clearpipe.InputError, match="inside the model folder"):
        check_output(str(tiny_bert), tiny_bert / "calibrated")
    (tmp_path / "empty").mkdir()
    check_output(str(tiny_bert), tmp_path / "empty")


def test_recalibrating_replaces_the_card_section(tiny_bert, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(tiny_bert, source)
    (source / "README.md").write_text("# model\n\n## Results\n\nfine\n\n## Use\n\nclearpipe.load\n")
    (source / "metrics.json").write_text('{"test": {"accuracy": 0.9}}')
    first = write_calibrated_copy(
        str(source), tmp_path / "a", Calibration(Temperature(2.0), "x", 60, 0.1, 0.05, 0.5, 0.4)
    )
    second = write_calibrated_copy(
        str(first), tmp_path / "b", Calibration(Temperature(3.0), "y", 60, 0.1, 0.05, 0.5, 0.4)
    )
    card = (second / "README.md").read_text()
    assert (
        card.count("## Calibration") == 1
        and "T = 3.0000" in card
        and card.index("## Calibration") < card.index("## Use")
    )
    assert json.loads((second / "metrics.json").read_text())["calibration"]["temperature"] == 3.0


def test_nll_of_a_uniform_prediction_is_log_of_the_label_count():
    assert nll(np.zeros((4, 3)), np.array([0, 1, 2, 0])) == pytest.approx(np.log(3))


def _rows(path: Path) -> tuple[list[str], list[int], list[int]]:
    lines = [line.split("\t") for line in path.read_text().splitlines()[1:]]
    return [t for t, _ in lines], [int(label) for _, label in lines], list(range(1, len(lines) + 1))


def test_auto_fit_on_logits_that_separate_every_row_keeps_the_plain_temperature():
    # a barely regularised few-shot head on easy rows: held-out NLL rounds to 0 (was 0/0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    logits = np.where(np.eye(2)[y] == 1, 400.0, -400.0) + rng.normal(0, 1, (60, 2))
    found = fit(logits, y, "easy rows", "auto")
    assert found.held_out_nll["temperature"] == 0.0
    assert found.scaling.power == 1.0  # the plain temperature, not the margin one
    assert found.nll_after == 0.0
