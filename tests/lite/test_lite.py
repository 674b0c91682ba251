"""`clearpipe.lite`: export folders run without torch and answer as `clearpipe.load` answers them.

Parity is checked against the full classifier on the same folder (same graph, same batching) and
against fp32 PyTorch; the ONNX tests need `clearpipe[onnx]`, the OpenVINO ones `clearpipe[openvino]`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clearpipe
from checkpoints import MIXED_TEXTS as TEXTS
from clearpipe import lite
from clearpipe.engine.exported import EXPORT_INFO, REFEREE_FILE
from clearpipe.engine.graphs import open_graph
from clearpipe.engine.recheck import close_calls
from clearpipe.errors import CheckpointError, InputError
from clearpipe.onnx.export import export_onnx
from cli.helpers import assert_user_error, env, run

PAIRS = [(TEXTS[i], TEXTS[i + 1]) for i in range(0, 40, 2)]


def flat(outputs) -> list:
    """Outputs (one dict, a list of dicts, or a list of ranked lists) as one flat list of dicts."""
    if isinstance(outputs, dict):
        return [outputs]
    return [row for item in outputs for row in (item if isinstance(item, list) else [item])]


def same(got, expected) -> bool:
    """The same labels and keys, scores within 1e-6 (the same graph run the same way)."""
    got, expected = flat(got), flat(expected)
    return len(got) == len(expected) and all(
        g.keys() == e.keys()
        and g["label"] == e["label"]
        and g.get("decided") == e.get("decided")
        and abs(g["score"] - e["score"]) < 1e-6
        for g, e in zip(got, expected, strict=True)
    )


def needs(*modules: str) -> None:
    for module in modules:
        pytest.importorskip(module)


@pytest.fixture(scope="module")
def onnx_folder(onnx_export):
    return onnx_export  # tests/conftest.py: one export for every test that runs one


@pytest.fixture(scope="module")
def openvino_int8(openvino_int8_export):
    return openvino_int8_export


def test_lite_answers_as_the_full_classifier_on_the_same_export(onnx_folder):
    full, small = clearpipe.load(onnx_folder), lite.load(onnx_folder)
    got, expected = small.predict(TEXTS), full.predict(TEXTS)
    assert len(set(expected.best.tolist())) == 2, "the test model should use both labels"
    np.testing.assert_allclose(got.scores, expected.scores, atol=1e-6)
    assert same(small(TEXTS, top_k=None), full(TEXTS, top_k=None))
    assert isinstance(small(TEXTS[0]), dict) and same(small(TEXTS[0]), full(TEXTS[0]))
    assert same(small(TEXTS[:5], min_score=0.9), full(TEXTS[:5], min_score=0.9))
    assert small([]) == []


@pytest.mark.parametrize("export", ["onnx_folder", "openvino_int8"])
def test_the_same_rows_get_identical_labels_and_scores_from_both_loaders(export, request):
    # Both classifiers hand their rows to the engine's one loop over the same graph runner, so
    # the numbers are the same bits, not merely close: pairs, long texts and an int8 export's
    # referee re-runs included.
    folder = request.getfixturevalue(export)
    full, small = clearpipe.load(folder, max_length=16), lite.load(folder, max_length=16)
    items = [*TEXTS, *PAIRS, " ".join(TEXTS[:30]), ""]
    np.testing.assert_array_equal(small.logits(items), full.logits(full.tokenize(items)))
    got, expected = small.predict(items), full.predict(items)
    np.testing.assert_array_equal(got.scores, expected.scores)
    assert small(items, top_k=None) == full(items, top_k=None)


def test_lite_pads_on_the_side_the_tokenizer_names(onnx_folder, tmp_path):
    folder = tmp_path / "left"
    shutil.copytree(onnx_folder, folder)
    saved = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**saved, "padding_side": "left"}))
    small, full = lite.load(folder), clearpipe.load(folder)
    assert small.runner.padding_side == full.runner.padding_side == "left"
    batch = small.runner.padded(small.tokenize(["a", "a much longer text than that"]), [0, 1])
    assert batch.attention_mask[0].tolist()[0] == 0 and batch.attention_mask[0].tolist()[-1] == 1
    np.testing.assert_array_equal(small.logits(TEXTS), full.logits(full.tokenize(TEXTS)))


def test_pairs_and_truncation_follow_the_tokenizer_transformers_uses(onnx_folder, sensitive_bert):
    torch_fp32 = clearpipe.load(sensitive_bert, dtype="float32", max_length=16)
    small = lite.load(onnx_folder, max_length=16)
    long = " ".join(TEXTS[:30])  # far beyond 16 tokens
    items = [*PAIRS, long, (long, long)]
    np.testing.assert_allclose(small.predict(items).scores, torch_fp32.predict(items).scores, atol=1e-4)
    encoding = small.encode([long])[0]
    assert len(encoding.ids) == 16 and encoding.ids == torch_fp32.tokenize([long]).input_ids[0]


def test_lite_imports_neither_torch_nor_transformers(onnx_folder):
    script = (
        "import sys; from clearpipe import lite; "
        f"clf = lite.load({str(onnx_folder)!r}); print(clf(['a text'])[0]['label']); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines()[-1] == "[]"


def test_a_saved_temperature_applies_unless_calibrated_is_false(onnx_folder, tmp_path):
    folder = tmp_path / "calibrated"
    shutil.copytree(onnx_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config["clearpipe_calibration"] = {"method": "temperature", "temperature": 3.0}
    (folder / "config.json").write_text(json.dumps(config))
    np.testing.assert_allclose(
        lite.load(folder).predict(TEXTS).scores, clearpipe.load(folder).predict(TEXTS).scores, atol=1e-6
    )
    raw = lite.load(folder, calibrated=False).predict(TEXTS).scores
    np.testing.assert_allclose(raw, lite.load(onnx_folder).predict(TEXTS).scores, atol=1e-6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(min_size=1, max_size=60), max_size=6))
def test_any_texts_get_the_full_classifiers_labels(onnx_folder, texts):
    full, small = clearpipe.load(onnx_folder), lite.load(onnx_folder)
    try:
        expected = full(texts)
    except InputError as error:  # what the full classifier refuses, lite refuses the same way
        with pytest.raises(InputError, match=str(error)[:40]):
            small(texts)
        return
    assert same(small(texts), expected)


def test_int8_close_calls_rerun_in_the_float_graph(openvino_int8, sensitive_bert):
    info = json.loads((openvino_int8 / EXPORT_INFO).read_text())
    assert (openvino_int8 / REFEREE_FILE).is_file() and info["referee_margin"] > 0
    judged = lite.load(openvino_int8)
    alone = dataclasses.replace(judged, referee=None)
    float_runner = dataclasses.replace(judged.runner, graph=open_graph(openvino_int8 / REFEREE_FILE))
    floats = dataclasses.replace(judged, runner=float_runner, referee=None)
    raw, checked, float_logits = alone.logits(TEXTS), judged.logits(TEXTS), floats.logits(TEXTS)
    close = close_calls(raw, info["referee_margin"])
    others = np.setdiff1d(np.arange(len(TEXTS)), close)
    np.testing.assert_allclose(checked[close], float_logits[close], atol=1e-5)
    np.testing.assert_array_equal(checked[others], raw[others])
    fp32 = clearpipe.load(sensitive_bert, dtype="float32").predict(TEXTS).best
    assert np.mean(checked.argmax(1) == fp32) >= np.mean(raw.argmax(1) == fp32)
    full = clearpipe.load(openvino_int8)  # the full engine re-runs the same rows
    assert full.referee is not None and full.referee.margin == info["referee_margin"]
    np.testing.assert_allclose(full.logits(full.tokenize(TEXTS)), checked, atol=1e-5)
    assert clearpipe.load(openvino_int8, recheck=False).referee is None


def test_a_checkpoint_is_not_an_export(sensitive_bert):
    with pytest.raises(CheckpointError, match=r"not a folder written by `clearpipe export`.*clearpipe\.load"):
        lite.load(sensitive_bert)


def test_max_length_beyond_the_export_is_refused(onnx_folder):
    with pytest.raises(InputError, match="between 2 and the export's limit of 64 tokens, got 65"):
        lite.load(onnx_folder, max_length=65)  # the tiny BERT has 64 positions


def test_a_missing_runtime_says_how_to_install_it(onnx_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(
        CheckpointError, match=r"ONNX export; running it needs onnxruntime: pip install 'clearpipe\[onnx\]'"
    ):
        lite.load(onnx_folder)


def test_classify_lite_on_the_command_line(onnx_folder, sensitive_bert):
    result = run("classify", "--lite", "--model", onnx_folder, "--json", "--top-k", "2", *TEXTS[:3])
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert same(got, lite.load(onnx_folder)(TEXTS[:3], top_k=2))
    assert_user_error(run("classify", "--lite", "--model", sensitive_bert, "x"), "not a folder written by")
    chunked = run("classify", "--lite", "--model", onnx_folder, "--long-text", "chunk", "x")
    assert_user_error(chunked, "--long-text chunk needs the full classifier")


def test_a_dtype_the_export_cannot_run_in_is_refused(onnx_folder):
    with pytest.raises(InputError, match="is an ONNX export, which runs as exported; drop dtype='int8'"):
        lite.load(onnx_folder, dtype="int8")


def predict_both(folder, tmp_path, *flags: str) -> tuple[list[dict], list[dict]]:
    """`clearpipe predict` over TEXTS with --lite and without, on the same export: both tables."""
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([i, text] for i, text in enumerate(TEXTS))
    tables = []
    for name, lite_flag in (("lite.csv", ["--lite"]), ("full.csv", [])):
        result = run("predict", source, "-o", tmp_path / name, "--model", folder, *flags, *lite_flag)
        assert result.returncode == 0, result.stderr
        with (tmp_path / name).open(encoding="utf-8") as handle:
            tables.append(list(csv.DictReader(handle)))
    return tables[0], tables[1]


@pytest.mark.slow
def test_predict_lite_writes_the_rows_the_full_classifier_writes(onnx_folder, tmp_path):
    small, full = predict_both(onnx_folder, tmp_path, "--min-score", "0.6")
    assert [r["id"] for r in small] == [str(i) for i in range(len(TEXTS))]
    assert [(r["label"], r["decided"]) for r in small] == [(r["label"], r["decided"]) for r in full]
    assert {r["decided"] for r in small} == {"true", "false"}  # the threshold cuts through these texts
    assert max(abs(float(a["score"]) - float(b["score"])) for a, b in zip(small, full, strict=True)) < 1e-6


@pytest.mark.slow
def test_predict_lite_adds_a_multi_label_models_labels_column(tiny_multi, tmp_path):
    needs("onnxruntime", "onnxscript")
    folder = tmp_path / "multi-onnx"
    export_onnx(str(tiny_multi), folder, texts=TEXTS, check_name="test texts")
    small, full = predict_both(folder, tmp_path)
    assert "labels" in small[0]
    assert [r["labels"] for r in small] == [r["labels"] for r in full]


def test_predict_lite_imports_neither_torch_nor_transformers(onnx_folder, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(TEXTS[:5]) + "\n", encoding="utf-8")
    argv = ["clearpipe", "predict", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl")]
    script = (
        "import sys; from clearpipe.cli.app import main; "
        f"sys.argv = {[*argv, '--lite', '--model', str(onnx_folder)]!r}\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 5


def test_predict_lite_refuses_what_lite_cannot_do(onnx_folder, tmp_path):
    (tmp_path / "in.txt").write_text("a text\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    args = ["predict", tmp_path / "in.txt", "-o", out, "--lite", "--model", onnx_folder]
    gpus = run(*args, "--engine", "ray", "--gpus-per-worker", "1")
    assert_user_error(gpus, "--lite runs on the CPU", "--gpus-per-worker")
    assert_user_error(run("predict", tmp_path / "in.txt", "-o", out, "--lite"), "give it with --model")
    assert not out.exists() and not (tmp_path / "out.csv.parts").exists()
