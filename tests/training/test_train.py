"""Training on tiny random models: it learns, writes a loadable checkpoint with its reports,
resumes an interrupted run, and round-trips multi-label thresholds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

import clearpipe
from clearpipe.training.data import DataOptions
from clearpipe.training.evaluation import saved_thresholds
from clearpipe.training.train import ClearpipeTrainer, TrainConfig, train
from tiny_bases import word_base

ASSETS = Path(__file__).parents[1] / "assets"
SST2 = ASSETS / "sst2_train.tsv"
FAST = {"batch_size": 16, "max_length": 32, "warmup": 0.1, "patience": None, "bf16": False}


class Interrupt(TrainerCallback):
    """Stops the run right after the checkpoint of epoch `epochs`, as Ctrl-C would."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_save(self, args, state, control, **kwargs):
        if state.epoch is not None and state.epoch >= self.epochs:
            raise KeyboardInterrupt


@pytest.fixture(scope="session")
def base(tmp_path_factory, minilm_dir) -> Path:
    return word_base(tmp_path_factory.mktemp("word-base"), minilm_dir)


@pytest.fixture(scope="session")
def sst2_run(base, tmp_path_factory):
    """One run shared by several tests: validation on the training rows, so the best epoch is the
    one that fits them best."""
    output = tmp_path_factory.mktemp("sst2-run") / "model"
    config = TrainConfig(
        data=str(SST2),
        validation=str(SST2),
        test=str(ASSETS / "sst2_dev.tsv"),
        base=str(base),
        output=str(output),
        data_options=DataOptions(label_names=["negative", "positive"]),
        epochs=4,
        learning_rate=5e-3,
        **FAST,
    )
    return train(config)


@pytest.mark.slow
def test_sst2_training_accuracy_is_clearly_above_chance(sst2_run):
    # 57% of the rows are positive: a model that learned nothing scores about that.
    assert sst2_run.metrics["validation"]["accuracy"] > 0.8
    assert sst2_run.global_step == 4 * math.ceil(300 / 16)


@pytest.mark.slow
def test_output_folder_loads_in_transformers_pipeline(sst2_run):
    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(sst2_run.output))
    assert pipe("a great film")[0]["label"] in {"negative", "positive"}
    config = json.loads((sst2_run.output / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}


@pytest.mark.slow
def test_run_reports(sst2_run):
    out = sst2_run.output
    for name in (
        "metrics.json",
        "trace.json",
        "training_config.json",
        "curves.png",
        "confusion_matrix.png",
        "README.md",
    ):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "checkpoints").exists()
    trace = json.loads((out / "trace.json").read_text())
    assert [row["epoch"] for row in trace["epochs"]] == [1, 2, 3, 4]
    assert all(row["train_loss"] is not None and row["accuracy"] is not None for row in trace["epochs"])
    flow = trace["data_flow"]
    assert flow["loaded"] == {"rows": 300, "columns": 2, "column_names": ["sentence", "label"]}
    assert flow["token_ids"]["max_length"] == 32
    assert flow["batches"]["first_batch"][0] == 16 and flow["batches"]["sequence_width"]["max"] <= 32
    assert flow["logits"] == {"per_batch": [16, 2], "validation_shape": [300, 2]}
    assert sum(flow["predicted_labels"].values()) == 300
    resolved = json.loads((out / "training_config.json").read_text())
    assert resolved["versions"]["transformers"] and resolved["resolved"]["max_length"] == 32
    assert resolved["arguments"]["learning_rate"] == 5e-3
    card = (out / "README.md").read_text()
    assert "negative" in card and "| learning rate | 0.005 |" in card
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test", "calibration"} and metrics["test"]["rows"] == 100


@pytest.mark.slow
def test_agnews_four_classes_learn(base, tmp_path):
    result = train(
        TrainConfig(
            data=str(ASSETS / "agnews_train.tsv"),
            validation=str(ASSETS / "agnews_train.tsv"),
            base=str(base),
            output=str(tmp_path / "agnews"),
            epochs=5,
            learning_rate=3e-3,
            class_weights="auto",  # balanced classes: weights near 1, the weighted path still learns
            **FAST,
        )
    )
    assert result.metrics["validation"]["labels"] == ["Business", "Sci/Tech", "Sports", "World"]
    assert result.metrics["validation"]["accuracy"] > 0.5  # chance is 0.25


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_step_count(base, tmp_path):
    output = tmp_path / "resumed"
    config = TrainConfig(
        data=str(SST2), base=str(base), output=str(output), epochs=2, learning_rate=1e-3, **FAST
    )
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[Interrupt(epochs=1)])
    assert list((output / "checkpoints").iterdir())
    assert not (output / "config.json").exists()
    with pytest.raises(clearpipe.InputError, match="not empty"):
        train(config)
    result = train(TrainConfig(**{**config.__dict__, "resume": True}))
    steps_per_epoch = math.ceil(270 / 16)  # 10% of the 300 rows is held out for validation
    assert result.global_step == 2 * steps_per_epoch
    trace = json.loads((output / "trace.json").read_text())
    assert trace["optimizer_steps"] == 2 * steps_per_epoch
    # The epoch finished before the interruption comes back from the checkpoint's log history.
    assert [row["epoch"] for row in trace["epochs"]] == [1, 2]
    assert trace["epochs"][0]["seconds"] is None and trace["epochs"][1]["seconds"] > 0
    clf = clearpipe.load(str(output))
    assert clf(["fine"])[0]["label"] in {"0", "1"}


@pytest.mark.slow
def test_multi_label_thresholds_round_trip(base, tmp_path):
    rows = [line.split("\t") for line in SST2.read_text().splitlines()[1:]]
    records = []
    for sentence, label in rows:
        labels = (["positive"] if label.strip() == "1" else []) + (
            ["long"] if len(sentence.split()) > 8 else []
        )
        records.append({"text": sentence, "labels": labels or ["none"]})
    data = tmp_path / "multi.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records))
    result = train(
        TrainConfig(
            data=str(data), validation=str(data), base=str(base), output=str(tmp_path / "multi"),
            epochs=2, learning_rate=5e-3, class_weights="auto", **FAST,
        )
    )  # fmt: skip
    thresholds = result.metrics["validation"]["thresholds"]
    assert set(thresholds) == {"long", "none", "positive"}
    config = json.loads((tmp_path / "multi" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["label_thresholds"] == thresholds
    clf = clearpipe.load(str(tmp_path / "multi"))
    assert list(saved_thresholds(clf.model.config, clf.labels)) == [thresholds[n] for n in clf.labels]


def test_class_weights_weight_the_loss():
    weights = torch.tensor([1.0, 3.0])
    trainer = ClearpipeTrainer.__new__(ClearpipeTrainer)  # only the loss hook is under test
    trainer.class_weights, trainer.multi_label = weights, False

    class Model(torch.nn.Module):
        def forward(self, x):
            return type("Out", (), {"logits": x})()

    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    loss = trainer.compute_loss(Model(), {"x": logits, "labels": labels})
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=weights)
    per_row = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert loss == pytest.approx(expected.item())
    assert expected.item() == pytest.approx(float((per_row * weights[labels]).sum() / weights[labels].sum()))
    assert not np.isclose(loss.item(), per_row.mean().item())


def test_half_precision_weights_keep_a_float32_config(base, tmp_path):
    from safetensors import safe_open
    from transformers import pipeline

    output = tmp_path / "half"
    config = TrainConfig(
        data=str(SST2),
        validation=str(SST2),
        base=str(base),
        output=str(output),
        data_options=DataOptions(label_names=["negative", "positive"]),
        max_steps=1,
        save_dtype="float16",
        **FAST,
    )
    train(config)
    with safe_open(output / "model.safetensors", "pt") as weights:
        assert {str(weights.get_slice(k).get_dtype()) for k in weights.keys()} == {"F16"}  # noqa: SIM118
    assert json.loads((output / "config.json").read_text())["dtype"] == "float32"
    assert pipeline("text-classification", model=str(output), device="cpu").model.dtype == torch.float32


@pytest.mark.slow
def test_training_calibrates_on_its_validation_split(sst2_run):
    out = sst2_run.output
    saved = json.loads((out / "config.json").read_text())["clearpipe_calibration"]
    assert saved["rows"] == 300 and saved["fitted_on"] == f"the validation rows of {SST2}"
    assert saved["nll_after"] <= saved["nll_before"]
    assert sst2_run.metrics["calibration"] == saved
    assert json.loads((out / "metrics.json").read_text())["calibration"] == saved
    validation = sst2_run.metrics["validation"]
    assert validation["calibration"]["method"] == saved["method"]
    assert set(validation["uncalibrated"]) == {"ece", "log_loss", "brier"}
    card = (out / "README.md").read_text()
    assert card.index("## Calibration") < card.index("## Use")
    assert clearpipe.load(str(out)).settings.temperature is not None
