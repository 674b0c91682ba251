"""The embedded default sentiment model: present, half precision, labelled, and accurate."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

import clearpipe
from clearpipe.loading import DEFAULT_MODEL_DIR
from clearpipe.training.evaluation import evaluate_file

pytestmark = pytest.mark.default_model


def test_shipped_files_and_dtype():
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md", "metrics.json"):
        assert (DEFAULT_MODEL_DIR / name).is_file(), name
    with safe_open(DEFAULT_MODEL_DIR / "model.safetensors", "pt") as weights:
        dtypes = {str(weights.get_slice(key).get_dtype()) for key in weights.keys()}  # noqa: SIM118 (not a dict)
    assert dtypes == {"F16"}
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    # Half-size weights, float32 config: plain transformers must not run it in float16 on a CPU.
    assert config["dtype"] == "float32"


def test_plain_transformers_runs_it_in_float32():
    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(DEFAULT_MODEL_DIR), device="cpu")
    assert pipe.model.dtype == torch.float32
    assert pipe("I love this movie!")[0]["label"] == "positive"


def test_default_pipeline_reads_sentiment():
    classifier = clearpipe.pipeline("sentiment-analysis")
    results = classifier(["I love this movie!", "A dreadful, boring waste of two hours."])
    assert [r["label"] for r in results] == ["positive", "negative"]


@pytest.mark.slow
def test_accuracy_on_sst2_validation(shared_data):
    # The GLUE SST-2 validation set; the recipe's own run reported its figure in metrics.json.
    result, _ = evaluate_file(clearpipe.load(), shared_data / "sst2" / "test.tsv")
    shipped = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())["test"]["accuracy"]
    assert result.rows == 872
    # The recipe measured it in one number format on one CPU; here it runs in the default dtype
    # (bf16 where the CPU has it, float32 elsewhere), whose labels differ from fp32's on 1 of these
    # 872 sentences (docs/ENGINE.md). Three sentences leave room for other CPUs' kernels.
    assert result.accuracy == pytest.approx(shipped, abs=3 / 872)
    assert result.accuracy > 0.91  # the distilled model; the one before it scored 0.8945
    # Shipped calibrated (fitted on held-out sentences, not on this set), and it helps here too.
    assert result.calibration is not None
    assert result.log_loss < result.uncalibrated["log_loss"] and result.ece < result.uncalibrated["ece"]


def test_the_recipe_recorded_its_teacher():
    resolved = json.loads((DEFAULT_MODEL_DIR / "training_config.json").read_text())["resolved"]
    assert resolved["teacher"]["accuracy"]["test"] > 0.93
    assert resolved["teacher"]["unlabeled_rows"] > 0
