"""`clearpipe export`: ONNX models that load through `clearpipe.load`, and the accuracy guard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import clearpipe
from checkpoints import MIXED_TEXTS as TEXTS
from clearpipe.engine.onnx_runtime import EXPORT_INFO, ONNX_FILE
from clearpipe.onnx.agreement import AccuracyError, compare
from clearpipe.onnx.export import check_export, export_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def exported(sensitive_bert, tmp_path_factory):
    output = tmp_path_factory.mktemp("export") / "onnx"
    report = export_onnx(str(sensitive_bert), output, texts=TEXTS, check_name="test texts")
    return output, report


def test_export_loads_through_clearpipe_and_matches_fp32(sensitive_bert, exported):
    output, report = exported
    assert sorted(p.name for p in output.iterdir()) >= sorted([ONNX_FILE, EXPORT_INFO, "config.json"])
    assert not output.with_name("onnx.partial").exists()
    info = json.loads((output / EXPORT_INFO).read_text())
    assert info["agreement"]["label_agreement"] == report.agreement.label_agreement == 1.0
    onnx = clearpipe.load(output)
    torch_fp32 = clearpipe.load(sensitive_bert, dtype="float32")
    assert onnx.settings.dtype == "onnx"
    got, expected = onnx.predict(TEXTS), torch_fp32.predict(TEXTS)
    assert len(set(expected.best.tolist())) == 2, "the test model should use both labels"
    assert np.abs(got.scores - expected.scores).max() < 1e-4
    assert [r["label"] for r in onnx(TEXTS)] == [r["label"] for r in torch_fp32(TEXTS)]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["distilbert", "roberta"])
def test_every_first_token_architecture_exports_its_fp32_logits(tiny, kind, tmp_path):
    # The exporter traces the last layer for the first token only (clearpipe.engine.first_token), as
    # classification runs it; transformers' own model, whole, is the oracle.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tiny(kind, 3)
    export_onnx(str(folder), tmp_path / "onnx", texts=TEXTS, check_name="test texts")
    got = clearpipe.load(tmp_path / "onnx").predict(TEXTS, function_to_apply="none").scores
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    inputs = AutoTokenizer.from_pretrained(folder)(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model(**inputs).logits.numpy()
    assert np.abs(got - expected).max() < 1e-4


def _damage(folder, target):
    """Copy an exported folder and flip the sign of its classification head: every label flips."""
    import onnx
    from onnx import numpy_helper

    shutil.copytree(folder, target)
    model = onnx.load(str(target / ONNX_FILE))
    heads = [t for t in model.graph.initializer if "classifier" in t.name]
    assert heads, [t.name for t in model.graph.initializer]
    for tensor in heads:
        tensor.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(tensor), tensor.name))
    onnx.save(model, str(target / ONNX_FILE))
    return target


def test_damaged_export_is_refused(sensitive_bert, exported, tmp_path):
    damaged = _damage(exported[0], tmp_path / "damaged")
    reference = clearpipe.load(sensitive_bert, dtype="float32")
    with pytest.raises(AccuracyError, match=r"refused: label agreement \d+\.\d+%"):
        check_export(reference, damaged, TEXTS, threshold=0.99)
    # The same comparison passes the intact export.
    assert check_export(reference, exported[0], TEXTS, threshold=0.99).label_agreement == 1.0


def test_agreement_counts_labels_and_largest_score_difference():
    from clearpipe.postprocess import Activation, Predictions

    a = Predictions(np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]]), ["n", "p"], Activation.SOFTMAX)
    b = Predictions(np.array([[0.8, 0.2], [0.7, 0.3], [0.5, 0.5]]), ["n", "p"], Activation.SOFTMAX)
    agreement = compare(a, b)
    assert agreement.label_agreement == pytest.approx(2 / 3)
    assert agreement.max_score_diff == pytest.approx(0.3)


def _int8_hostile(source, target):
    """A model that int8 quantization destroys: one huge weight, shared by both classifier rows,
    cancels in fp32 but sets the quantization step so coarse that every other head weight rounds
    to zero, leaving the two logits tied."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(source, dtype=torch.float32)
    with torch.no_grad():
        model.classifier.weight[:, 0] = 1e4
        model.classifier.bias.zero_()
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


@pytest.mark.slow
def test_cli_refuses_an_int8_export_that_lost_accuracy(sensitive_bert, tmp_path):
    damaged = _int8_hostile(sensitive_bert, tmp_path / "hostile")
    check = tmp_path / "check.txt"
    check.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    output = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "clearpipe",
            "export",
            str(damaged),
            "--format",
            "onnx",
            "--quantize",
            "int8",
            "--output",
            str(output),
            "--check",
            str(check),
        ],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert run.returncode != 0, run.stdout
    assert "refused" in run.stderr and "agreement" in run.stderr
    assert "Traceback" not in run.stderr
    assert not output.exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.slow
def test_cli_export_refuses_unknown_format_and_existing_output(sensitive_bert, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    for extra in (
        ["--format", "tflite", "--output", str(tmp_path / "x")],
        ["--output", str(tmp_path / "taken")],
    ):
        run = subprocess.run(
            [sys.executable, "-m", "clearpipe", "export", str(sensitive_bert), *extra],
            capture_output=True,
            text=True,
            env=os.environ,
        )
        assert run.returncode == 2 and run.stderr.startswith("clearpipe: error:"), run.stderr
