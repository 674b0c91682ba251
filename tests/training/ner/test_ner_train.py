"""Named-entity training on a tiny base: it learns the synthetic entities, keeps the best epoch by
entity F1, writes a checkpoint that `clearpipe.load` tags with, and its reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

import clearpipe
from clearpipe.errors import InputError
from clearpipe.training.data import DataOptions
from clearpipe.training.distill import Distillation
from clearpipe.training.ner.train import train
from clearpipe.training.train import TrainConfig

FAST = {"batch_size": 16, "learning_rate": 5e-3, "bf16": False, "patience": None}


@pytest.fixture(scope="module")
def run(ner_base, ner_files, tmp_path_factory):
    output = tmp_path_factory.mktemp("ner-run") / "model"
    config = TrainConfig(
        data=str(ner_files["train"]),
        validation=str(ner_files["valid"]),
        test=str(ner_files["test"]),
        base=str(ner_base),
        output=str(output),
        epochs=2,
        **FAST,
    )
    return train(config)


def test_it_learns_the_entities(run):
    assert run.metrics["test"]["overall"]["f1"] > 0.9
    assert set(run.metrics["validation"]["per_type"]) == {"LOC", "ORG", "PER"}
    assert run.best_epoch in (1.0, 2.0)


def test_the_folder_is_a_token_classifier_with_reports(run):
    tagger = clearpipe.load(str(run.output))
    assert tagger.predict_word_tags([["mary", "lives", "in", "rome"]]) == [["B-PER", "O", "O", "B-LOC"]]
    config = json.loads((run.output / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert config["id2label"]["0"] == "O"
    metrics = json.loads((run.output / "metrics.json").read_text())
    assert {"per_type", "confusion", "mistakes", "worst", "token_accuracy"} <= set(metrics["test"])
    trace = json.loads((run.output / "trace.json").read_text())
    assert [row["epoch"] for row in trace["epochs"]] == [1.0, 2.0]
    assert all(row["seconds"] > 0 for row in trace["epochs"])
    assert trace["data"]["splits"][0]["entities"]["PER"] > 0
    card = (run.output / "README.md").read_text()
    assert "pipeline_tag: token-classification" in card and "| test | overall |" in card
    assert not (run.output / "checkpoints").exists()


def test_validation_is_split_off_when_not_given(ner_base, ner_files, tmp_path):
    config = TrainConfig(
        data=str(ner_files["train"]), base=str(ner_base), output=str(tmp_path / "m"), max_steps=2, **FAST
    )
    result = train(config)
    report = json.loads((result.output / "trace.json").read_text())["data"]["splits"]
    assert [s["sentences"] for s in report] == [180, 20]


@pytest.mark.parametrize(
    ("change", "flag"),
    [
        ({"class_weights": "auto"}, "--class-weights"),
        ({"distillation": Distillation(("t",), hidden_weight=1.0)}, "--distill-hidden"),
        ({"data_options": DataOptions(label_column="y")}, "--label-column"),
    ],
)
def test_classification_settings_are_refused(ner_files, tmp_path, change, flag):
    config = TrainConfig(data=str(ner_files["train"]), output=str(tmp_path / "m"), **change)
    with pytest.raises(InputError, match=flag):
        train(config)


def test_a_table_beside_ner_data_is_refused(ner_files, tmp_path):
    table = tmp_path / "valid.csv"
    table.write_text("text,label\na,1\n")
    config = TrainConfig(data=str(ner_files["train"]), validation=str(table), output=str(tmp_path / "m"))
    with pytest.raises(InputError, match=r"--validation .*valid\.csv is not a named-entity file"):
        train(config)


def test_token_scores_are_calibrated_on_the_validation_words(run):
    saved = json.loads((run.output / "config.json").read_text())["clearpipe_calibration"]
    assert saved["method"] == "temperature" and saved["rows"] == 188  # the validation file's words
    assert saved["nll_after"] <= saved["nll_before"]
    assert json.loads((run.output / "metrics.json").read_text())["calibration"] == saved
    assert "## Calibration" in (run.output / "README.md").read_text()
    text = "peter works for apple"
    calibrated = clearpipe.load(str(run.output), dtype="float32")
    raw = clearpipe.load(str(run.output), dtype="float32", calibrated=False)
    ours, theirs = calibrated(text, aggregation_strategy="none"), raw(text, aggregation_strategy="none")
    assert [e["entity"] for e in ours] == [e["entity"] for e in theirs]  # a temperature moves no tag
    logits = raw.scores(text).logits[0] / saved["temperature"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = (expected / expected.sum(axis=1, keepdims=True)).max(axis=1)[1]  # the first word's token
    assert ours[0]["score"] == pytest.approx(float(expected), abs=1e-5)


def test_an_export_keeps_the_temperature_in_both_loaders(run, tmp_path):
    from clearpipe import lite
    from clearpipe.onnx.export import export_onnx

    folder = tmp_path / "onnx"
    export_onnx(
        str(run.output), folder, texts=["mary lives in rome", "google opened in paris ."], check_name="t"
    )
    text = "anna works for amazon"
    torch_scores = [e["score"] for e in clearpipe.load(str(run.output), dtype="float32")(text)]
    for loaded in (clearpipe.load(str(folder)), lite.load(folder)):
        assert loaded.settings.temperature is not None
        assert [e["score"] for e in loaded(text)] == pytest.approx(torch_scores, abs=1e-4)
    uncalibrated = [e["score"] for e in lite.load(folder, calibrated=False)(text)]
    assert uncalibrated != pytest.approx(torch_scores, abs=1e-4)


def test_the_figures_say_how_far_word_scores_can_be_trusted(run):
    scores = json.loads((run.output / "metrics.json").read_text())["test"]["scores"]
    assert scores["words"] == 188 and scores["temperature"] > 0  # every word of the test file
    assert 0 <= scores["ece"] <= 1 and scores["log_loss"] >= 0
    assert {"raw_ece", "raw_log_loss"} <= set(scores)
