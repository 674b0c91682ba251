"""Few-shot training by SetFit (`training.setfit`, `training.fewshot`) and the model it saves
(`clearpipe.pooled`): the saved folder computes what the card says, with transformers as the
oracle, and every loader and command takes it."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from transformers import AutoModel, AutoTokenizer

import clearpipe
import clearpipe.lite
from clearpipe import pooled, preprocess
from clearpipe.errors import InputError
from clearpipe.training import fewshot, setfit
from clearpipe.training.distill import Distillation
from clearpipe.training.train import TrainConfig, train

POSITIVE = [
    "great film",
    "loved it",
    "wonderful acting",
    "a delight",
    "superb story",
    "so good",
    "fantastic fun",
    "beautiful work",
    "brilliant and moving",
    "charming",
]
NEGATIVE = [
    "awful film",
    "hated it",
    "terrible acting",
    "a bore",
    "dreadful story",
    "so bad",
    "painful mess",
    "ugly work",
    "dull and flat",
    "tedious",
]


def _table(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def few_shot(student_base, tmp_path_factory) -> Path:
    """A SetFit model trained on 8 rows per class (a few pairs per row, to stay fast)."""
    folder = tmp_path_factory.mktemp("few-shot")
    data = _table(
        folder / "train.csv",
        [(t, "positive") for t in POSITIVE[:8]] + [(t, "negative") for t in NEGATIVE[:8]],
    )
    test = _table(
        folder / "test.csv", [(t, "positive") for t in POSITIVE[8:]] + [(t, "negative") for t in NEGATIVE[8:]]
    )
    out = folder / "model"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        train(
            TrainConfig(
                data=str(data), test=str(test), output=str(out), base=str(student_base), setfit_iterations=3
            )
        )
    (folder / "printed.txt").write_text(printed.getvalue())
    return out


def _by_hand(folder: Path, texts: list[str]) -> np.ndarray:
    """The card's four steps with plain transformers: encoder, mean over real tokens, unit length, head."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder).eval()
    head = __import__("safetensors.torch", fromlist=["load_file"]).load_file(
        str(folder / "model.safetensors")
    )
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    e = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
    return (e @ head["head.weight"].T + head["head.bias"]).numpy()


def test_the_saved_folder_computes_what_its_card_says(few_shot):
    texts = ["great film", "a long and tedious story about nothing much", ""]
    clf = clearpipe.load(few_shot, dtype="float32")
    np.testing.assert_allclose(clf.logits(clf.tokenize(texts)), _by_hand(few_shot, texts), atol=1e-5)
    card = (few_shot / "README.md").read_text()
    assert "normalize(mean(h_t))" in card and "head.weight" in card


def test_training_writes_cross_validated_figures_and_a_temperature(few_shot):
    metrics = json.loads((few_shot / "metrics.json").read_text())
    assert set(metrics) >= {"cross_validation", "test", "calibration"}
    assert metrics["cross_validation"]["rows"] == 16  # the 10% validation split is given back
    assert "3-fold out-of-fold logits" in metrics["calibration"]["fitted_on"]
    config = json.loads((few_shot / "config.json").read_text())
    assert config[pooled.HEAD_KEY] == pooled.HEAD and "clearpipe_calibration" in config
    assert json.loads((few_shot / "training_config.json").read_text())["resolved"]["method"] == "setfit"
    printed = (few_shot.parent / "printed.txt").read_text()
    # the data report lists a 10% validation split; the training log says it was given back
    assert "validation 10% of" in printed
    assert "validation rows split off go back into training" in printed
    assert "cross-validated on 3 folds" in printed


def test_a_pooled_model_runs_in_every_dtype_and_through_an_export(few_shot, tmp_path):
    texts = ["great film", "hated it", "so so"]
    reference = clearpipe.load(few_shot, dtype="float32").logits(clearpipe.load(few_shot).tokenize(texts))
    for dtype in ("bfloat16", "int8"):
        clf = clearpipe.load(few_shot, dtype=dtype)
        assert clf.logits(clf.tokenize(texts)).shape == reference.shape
    from clearpipe.onnx.export import export_onnx

    export_onnx(str(few_shot), tmp_path / "onnx", texts=POSITIVE + NEGATIVE, check_name="test texts")
    for loader in (clearpipe.load, clearpipe.lite.load):
        exported = loader(tmp_path / "onnx")
        np.testing.assert_allclose(exported.logits(exported.tokenize(texts)), reference, atol=1e-4)


def test_fit_head_is_logistic_regressions_predict_proba():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8))
    for classes in (2, 3):
        y = np.arange(40) % classes
        w, b = setfit.fit_head(x, y, classes, 1.0, 0)
        logits = x @ w.T + b
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        expected = LogisticRegression(max_iter=2000, random_state=0).fit(x, y).predict_proba(x)
        np.testing.assert_allclose(probs, expected, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=2, max_size=30).filter(lambda y: len(set(y)) > 1), st.integers(1, 3)
)
def test_pairs_are_one_positive_and_one_negative_per_row_and_iteration(labels, iterations):
    pairs = setfit.sample_pairs(labels, iterations, np.random.default_rng(0))
    y = np.asarray(labels)
    assert len(pairs) == 2 * iterations * len(labels)
    assert np.array_equal(pairs[:, 2], (y[pairs[:, 0]] == y[pairs[:, 1]]).astype(int))
    assert np.array_equal(np.bincount(pairs[:, 0], minlength=len(y)), np.full(len(y), 2 * iterations))


@pytest.mark.parametrize("pieces", [1, 3, 64])
def test_pooling_in_pieces_by_length_is_one_batchs_pooling_and_gradient(student_base, pieces):
    tokenizer, encoder = setfit.load_encoder(str(student_base))
    texts = [" ".join(POSITIVE[: 1 + i % 7]) for i in range(10)]
    tokenized = preprocess.tokenize(tokenizer, texts, 64, False)
    rows = np.array([3, 0, 9, 3, 5, 1, 8, 2])  # a row may appear twice, as in pairs
    torch.manual_seed(0)
    encoder.eval()  # no dropout: both ways must agree to the last bits of float32

    def grads(pooled):
        encoder.zero_grad()
        pooled.pow(2).sum().backward()
        return [p.grad.clone() for p in encoder.parameters() if p.grad is not None]

    whole = setfit._pooled(encoder, preprocess.collate(tokenized, rows, 0), encoder.device)
    expected = grads(whole)
    split = setfit.pooled_rows(encoder, tokenized, rows, 0, pieces)
    torch.testing.assert_close(split, whole, atol=1e-5, rtol=1e-4)
    for got, want in zip(grads(split), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_auto_picks_setfit_below_the_documented_rows_per_class():
    few = [0] * (setfit.SETFIT_BELOW - 1) + [1] * 500
    assert setfit.uses_setfit("auto", few, multi_label=False)
    assert not setfit.uses_setfit("auto", [0] * setfit.SETFIT_BELOW + [1] * setfit.SETFIT_BELOW, False)
    assert not setfit.uses_setfit("auto", few, multi_label=True)
    assert setfit.uses_setfit("setfit", [0] * 500 + [1] * 500, False)
    with pytest.raises(InputError, match="multi-label"):
        setfit.uses_setfit("setfit", few, multi_label=True)
    with pytest.raises(InputError, match="--method"):
        setfit.uses_setfit("fast", few, multi_label=False)


def test_a_class_with_one_row_is_refused_naming_it(student_base, tmp_path):
    data = _table(tmp_path / "t.csv", [(t, "positive") for t in POSITIVE[:8]] + [("awful", "negative")])
    with pytest.raises(InputError, match="negative"):
        train(
            TrainConfig(data=str(data), output=str(tmp_path / "o"), base=str(student_base), method="setfit")
        )


@pytest.mark.slow
def test_every_command_serves_a_few_shot_folder(few_shot, tmp_path):
    """The CLI, as a user runs it, on the SetFit folder: classify, evaluate, calibrate, trace,
    export with its guard, --lite on the export, and predict on Ray."""
    from cli.helpers import run

    rows = [(f"{t} {i}", "positive") for t in POSITIVE for i in range(3)]
    test = _table(
        tmp_path / "test.csv", rows + [(f"{t} {i}", "negative") for t in NEGATIVE for i in range(3)]
    )
    expected = clearpipe.load(few_shot)(["great film", "hated it"])
    shown = run("classify", "--model", few_shot, "--json", "great film", "hated it")
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line)["label"] for line in shown.stdout.splitlines()] == [e["label"] for e in expected]
    assert run("evaluate", few_shot, test).returncode == 0
    assert run("calibrate", few_shot, test, "-o", tmp_path / "calibrated").returncode == 0
    traced = run("trace", "--model", few_shot, "great film", "--json")
    assert traced.returncode == 0, traced.stderr
    stages = {stage["name"]: stage for stage in json.loads(traced.stdout)["stages"]}
    assert stages["model"]["pooled"]["kind"] == "mean_pooled"
    exported = run("export", few_shot, "-o", tmp_path / "onnx", "--check", test)
    assert exported.returncode == 0, exported.stderr
    lite = run("classify", "--model", tmp_path / "onnx", "--lite", "--json", "great film", "hated it")
    assert [json.loads(line)["label"] for line in lite.stdout.splitlines()] == [e["label"] for e in expected]
    out = tmp_path / "out.csv"  # a folder of parts on Ray
    ray = run("predict", test, "-m", few_shot, "-o", out, "--engine", "ray", timeout=300)
    assert ray.returncode == 0, ray.stderr
    written = [line for part in sorted(out.glob("part-*.csv")) for line in part.read_text().splitlines()[1:]]
    assert (out / "_SUCCESS").is_file() and len(written) == 3 * (len(POSITIVE) + len(NEGATIVE))


def test_a_head_from_label_names_starts_at_zero_shot_and_learns_from_rows():
    rng = np.random.default_rng(0)
    prompts = rng.normal(size=(3, 8))
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    x = rng.normal(size=(30, 8))
    y = np.arange(30) % 3
    held, _ = setfit.fit_head_from_names(x, y, prompts, 0.05, c=1e-8)
    np.testing.assert_allclose(held, prompts / 0.05, atol=1e-4)  # no room to move: zero-shot's head
    free, bias = setfit.fit_head_from_names(x, y, prompts, 0.05, c=1e4)
    train_accuracy = np.mean((x @ free.T + bias).argmax(1) == y)
    assert train_accuracy > np.mean((x @ prompts.T).argmax(1) == y) and train_accuracy > 0.9


def _data(per_class: int, held: int, from_split: bool = True) -> SimpleNamespace:
    labels = [0, 1] * per_class
    return SimpleNamespace(
        report=SimpleNamespace(validation_from_split=from_split),
        train=SimpleNamespace(labels=labels[held:]),
        validation=SimpleNamespace(labels=labels[:held]),
    )


def test_the_temperature_is_cross_validated_when_too_few_rows_would_be_held_out():
    assert fewshot.cross_validates(_data(8, 2))  # a class under CROSS_VALIDATE_BELOW rows
    assert fewshot.cross_validates(_data(64, 13))  # 64 per class: a 10% split keeps 13 < MIN_ROWS
    assert not fewshot.cross_validates(_data(300, 60))  # enough rows for a split's temperature
    assert not fewshot.cross_validates(_data(8, 2, from_split=False))  # --validation given


@pytest.mark.slow
def test_with_a_teacher_auto_fine_tunes_and_a_setfit_folder_teaches(few_shot, student_base, tmp_path, capsys):
    """A few rows plus unlabelled texts scored by a few-shot teacher: `--method auto` distils
    into a fine-tuned classifier (SetFit cannot distil), and the SetFit folder is the teacher."""
    assert not setfit.uses_setfit("auto", [0] * 8 + [1] * 8, multi_label=False, teacher=True)
    data = _table(
        tmp_path / "rows.csv",
        [(t, "positive") for t in POSITIVE[:8]] + [(t, "negative") for t in NEGATIVE[:8]],
    )
    unlabeled = tmp_path / "texts.txt"
    unlabeled.write_text("\n".join(POSITIVE[8:] + NEGATIVE[8:]) + "\n", encoding="utf-8")
    out = tmp_path / "student"
    train(
        TrainConfig(
            data=str(data),
            output=str(out),
            base=str(student_base),
            distillation=Distillation((str(few_shot),)),
            unlabeled=str(unlabeled),
            epochs=1,
            batch_size=8,
            max_length=16,
            bf16=False,
        )
    )
    assert "fine-tuning with distillation (SetFit cannot distil)" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert "clearpipe_head" not in config  # a plain sequence classifier, not a pooled SetFit folder
    assert config["architectures"][0].endswith("ForSequenceClassification")
    resolved = json.loads((out / "training_config.json").read_text())["resolved"]
    assert resolved["teacher"]["unlabeled_rows"] == 4
    assert clearpipe.load(out).labels == clearpipe.load(few_shot).labels
