"""Distillation on tiny models: the student moves toward its teacher, teacher logits are cached and
reused, a teacher with other labels is refused, and the loss mixes as documented."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

import clearpipe
from clearpipe.errors import InputError
from clearpipe.training import distill
from clearpipe.training.data import DataOptions
from clearpipe.training.distill import Distillation
from clearpipe.training.train import TrainConfig, train
from cli.helpers import assert_user_error, run

ASSETS = Path(__file__).parents[1] / "assets"
SST2 = ASSETS / "sst2_train.tsv"
NAMES = ["negative", "positive"]
FAST = {"batch_size": 16, "max_length": 32, "warmup": 0.1, "patience": None, "bf16": False}


def texts() -> list[str]:
    lines = SST2.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines]


def kl_to_teacher(model, tokenizer, teacher_logits: np.ndarray) -> float:
    """Mean KL(teacher || student) over the training texts, at temperature 1."""
    model.eval()
    with torch.no_grad():
        enc = tokenizer(texts(), padding=True, truncation=True, max_length=32, return_tensors="pt")
        student = torch.log_softmax(model(**enc).logits.float(), dim=1)
    teacher = torch.log_softmax(torch.from_numpy(teacher_logits), dim=1)
    return float((teacher.exp() * (teacher - student)).sum(dim=1).mean())


@pytest.mark.slow
def test_a_distilled_student_moves_toward_its_teacher(teacher, student_base, tmp_path):
    output = tmp_path / "student"
    distillation = Distillation((str(teacher),), temperature=2.0, weight=1.0)  # the teacher alone
    config = TrainConfig(
        data=str(SST2),
        validation=str(SST2),
        base=str(student_base),
        output=str(output),
        data_options=DataOptions(label_names=NAMES),
        epochs=4,
        learning_rate=5e-3,
        distillation=distillation,
        **FAST,
    )
    result = train(config)
    target = distill.teacher_logits(distillation, texts(), NAMES, output)  # from the run's cache
    tokenizer = AutoTokenizer.from_pretrained(student_base)
    set_seed(42)  # the same fresh head `train` started from
    before = AutoModelForSequenceClassification.from_pretrained(student_base, num_labels=2)
    after = AutoModelForSequenceClassification.from_pretrained(result.output)
    assert kl_to_teacher(after, tokenizer, target) < 0.5 * kl_to_teacher(before, tokenizer, target)
    recorded = clearpipe.load(result.output)  # the folder is an ordinary checkpoint
    assert recorded.labels == NAMES
    card = (output / "README.md").read_text(encoding="utf-8")
    assert f"Distilled from the teacher `{teacher}`" in card


def test_teacher_logits_are_cached_and_reused(teacher, tmp_path, monkeypatch):
    distillation = Distillation((str(teacher),))
    items = texts()[:50]
    first = distill.teacher_logits(distillation, items, NAMES, tmp_path)
    clf = clearpipe.load(teacher)
    np.testing.assert_allclose(first, clf.logits(clf.tokenize(items)), atol=1e-5)

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(clearpipe, "load", no_teacher)
    np.testing.assert_array_equal(distill.teacher_logits(distillation, items, NAMES, tmp_path), first)
    # The student's label order is the teacher's, reordered by name.
    swapped = distill.teacher_logits(distillation, items, NAMES[::-1], tmp_path)
    np.testing.assert_array_equal(swapped, first[:, ::-1])
    with pytest.raises(AssertionError, match="ran again"):  # other texts: not in the cache
        distill.teacher_logits(distillation, [*items, "something new"], NAMES, tmp_path)


@pytest.mark.slow
def test_a_teacher_with_other_labels_is_refused(tiny, student_base, tmp_path):
    three = tiny("bert", 3)
    result = run(
        "train", SST2, "--base", student_base, "-o", tmp_path / "out", "--teacher", three,
        "--label-names", "negative,positive", "--epochs", "1", "--max-length", "16",
    )  # fmt: skip
    assert_user_error(result, "a teacher must score the same labels", "LABEL_0")
    assert not (tmp_path / "out" / "config.json").exists()


@pytest.mark.slow
def test_unlabeled_rows_need_a_teacher(student_base, tmp_path):
    result = run("train", SST2, "--base", student_base, "-o", tmp_path / "out", "--unlabeled", SST2)
    assert_user_error(result, "--unlabeled", "--teacher")


def test_the_loss_mixes_teacher_and_labels_as_documented():
    student = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    teacher = torch.tensor([[1.0, 0.0], [-2.0, 3.0]])
    labels = torch.tensor([0, 1])
    hard = torch.nn.functional.cross_entropy(student, labels, reduction="none")
    labelled = torch.tensor([True, True])

    def mixed(weight, mask=labelled, t=2.0):
        return distill.loss(student, teacher, labels, mask, Distillation(("t",), t, weight), hard, False)

    torch.testing.assert_close(mixed(0.0), hard.mean())  # weight 0: plain cross-entropy
    kd = mixed(1.0)
    log_s, log_t = torch.log_softmax(student / 2, 1), torch.log_softmax(teacher / 2, 1)
    torch.testing.assert_close(kd, ((log_t.exp() * (log_t - log_s)).sum(1) * 4).mean())
    torch.testing.assert_close(mixed(0.3), 0.3 * kd + 0.7 * hard.mean())
    # An unlabelled row learns from the teacher alone, whatever the weight.
    only_first = torch.tensor([True, False])
    row_kd = (log_t.exp() * (log_t - log_s)).sum(1) * 4
    torch.testing.assert_close(mixed(0.3, only_first), (0.3 * row_kd[0] + 0.7 * hard[0] + row_kd[1]) / 2)
    same = distill.loss(student, student, labels, labelled, Distillation(("t",), 2.0, 1.0), hard, False)
    assert float(same) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("temperature", "weight", "flag"), [(0.0, 0.5, "temperature"), (2.0, 1.5, "weight")])
def test_bad_distillation_settings_name_their_flag(temperature, weight, flag):
    with pytest.raises(InputError, match=f"--distill-{flag}"):
        Distillation(("t",), temperature, weight).check()


@pytest.mark.slow
def test_a_run_stopped_during_the_teachers_pass_resumes(teacher, student_base, tmp_path, monkeypatch):
    output = tmp_path / "student"
    config = TrainConfig(
        data=str(SST2),
        base=str(student_base),
        output=str(output),
        data_options=DataOptions(label_names=NAMES),
        epochs=1,
        distillation=Distillation((str(teacher),)),
        **FAST,
    )
    monkeypatch.setattr(distill, "CHUNK_ROWS", 100)
    load, scored = clearpipe.load, []

    def teacher_stopping_after(parts: int):
        def fake_load(source, *args, **kwargs):
            clf = load(source, *args, **kwargs)
            real = clf.logits

            def logits(tokenized):
                if len(scored) == parts:
                    raise KeyboardInterrupt  # Ctrl-C in the middle of the teacher's pass
                scored.append(len(tokenized.input_ids))
                return real(tokenized)

            monkeypatch.setattr(clf, "logits", logits)
            return clf

        return fake_load

    monkeypatch.setattr(clearpipe, "load", teacher_stopping_after(1))
    with pytest.raises(KeyboardInterrupt):
        train(config)
    assert scored == [100] and not (output / "checkpoints").exists()
    with pytest.raises(InputError, match="not empty"):
        train(config)
    monkeypatch.setattr(clearpipe, "load", teacher_stopping_after(10))
    result = train(TrainConfig(**{**config.__dict__, "resume": True}))
    # 270 training rows: the first part came from the cache. (Then the 30 validation rows, scored
    # for the teacher's own accuracy, which the run records.)
    assert scored[:3] == [100, 100, 70]
    assert result.global_step == math.ceil(270 / 16)


def test_several_teachers_teach_their_mean_logits_each_cached_alone(
    teacher, second_teacher, tmp_path, monkeypatch
):
    items = texts()[:40]
    first = distill.teacher_logits(Distillation((str(teacher),)), items, NAMES, tmp_path)
    loaded = []
    load = clearpipe.load

    def counting_load(source, *args, **kwargs):
        loaded.append(str(source))
        return load(source, *args, **kwargs)

    monkeypatch.setattr(clearpipe, "load", counting_load)
    both = distill.teacher_logits(Distillation((str(teacher), str(second_teacher))), items, NAMES, tmp_path)
    assert loaded == [str(second_teacher)]  # the first teacher's pass came from its cache
    clf = load(second_teacher)
    np.testing.assert_allclose(both, (first + clf.logits(clf.tokenize(items))) / 2, atol=1e-5)
    with pytest.raises(InputError, match="same model twice"):
        Distillation((str(teacher), str(teacher))).check()
    assert Distillation(str(teacher)).teachers == (str(teacher),)  # one, not its characters
    assert Distillation([teacher]).teachers == (str(teacher),)


@pytest.mark.slow
def test_train_with_two_teachers_records_each_and_their_mean(teacher, second_teacher, student_base, tmp_path):
    output = tmp_path / "out"
    result = run(
        "train", SST2, "--base", student_base, "-o", output, "--label-names", "negative,positive",
        "--teacher", teacher, "--teacher", second_teacher, "--validation", SST2,
        "--epochs", "1", "--max-length", "16", "--no-calibrate",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    recorded = json.loads((output / "training_config.json").read_text())["resolved"]["teacher"]
    assert [t["source"] for t in recorded["teachers"]] == [str(teacher), str(second_teacher)]
    assert set(recorded["accuracy"]) == {"validation"}
    assert all(set(t["accuracy"]) == {"validation"} for t in recorded["teachers"])
    card = (output / "README.md").read_text(encoding="utf-8")
    assert "the mean logits of 2 teachers" in card and f"`{second_teacher}`" in card
