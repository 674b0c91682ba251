"""Named-entity distillation: the teacher's word logits are its first sub-token's, laid on the
student's first sub-tokens; the loss mixes KL and cross-entropy per word; a distilled run learns,
caches the teacher's pass and says where it learnt from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, TrainingArguments

import clearpipe
from clearpipe.errors import InputError
from clearpipe.training.distill import Distillation
from clearpipe.training.ner import distill
from clearpipe.training.ner.features import UNLABELED, Collator, to_dataset
from clearpipe.training.ner.read import read_ner
from clearpipe.training.ner.train import train
from clearpipe.training.train import TrainConfig

FAST = {"batch_size": 16, "learning_rate": 5e-3, "bf16": False, "patience": None}


def test_word_logits_are_the_first_sub_tokens_of_transformers_forward(teacher):
    words = [["mary", "lives", "in", "rome"], ["google", "opened", "in", "paris", "."]]
    found = clearpipe.load(str(teacher), dtype="float32").predict_word_logits(words)
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    model = AutoModelForTokenClassification.from_pretrained(teacher).eval()
    for one, got in zip(words, found, strict=True):
        encoded = tokenizer(one, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**encoded).logits[0].numpy()
        ids = encoded.word_ids()
        first = [ids.index(w) for w in range(len(one))]
        np.testing.assert_allclose(got, logits[first], atol=1e-4)


def test_teacher_logits_are_cached_and_laid_on_the_first_sub_tokens(teacher, ner_files, tmp_path):
    sentences = read_ner(ner_files["valid"]).sentences[:7]
    tags = json.loads((teacher / "config.json").read_text())["id2label"]
    tags = [tags[str(i)] for i in range(len(tags))][::-1]  # another order: the student's own
    run = tmp_path / "run"
    first = distill.teacher_word_logits(Distillation((str(teacher),)), sentences, tags, run)
    assert [len(a) for a in first] == [len(s.words) for s in sentences]
    parts = list((run / "teacher_logits").rglob("part-*.npy"))
    assert len(parts) == 1
    again = distill.teacher_word_logits(Distillation((str(teacher),)), sentences, tags, run)
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
    own = clearpipe.load(str(teacher)).predict_word_logits([list(s.words) for s in sentences])
    np.testing.assert_allclose(first[0], own[0][:, ::-1], atol=1e-6)  # reordered to `tags`
    dataset = to_dataset(AutoTokenizer.from_pretrained(teacher), sentences, tags, 64, first)
    row = dataset[0]
    on_words = [t for t, label in zip(row["teacher_logits"], row["labels"], strict=True) if label != -100]
    np.testing.assert_allclose(on_words, first[0], atol=1e-6)
    assert all(
        np.isnan(t).all()
        for t, label in zip(row["teacher_logits"], row["labels"], strict=True)
        if label == -100
    )
    batch = Collator(AutoTokenizer.from_pretrained(teacher))([dataset[0], dataset[1]])
    assert batch["teacher_logits"].shape == (*batch["labels"].shape, len(tags))
    padded = batch["labels"] == -100
    assert torch.isnan(batch["teacher_logits"][padded]).all()


def test_a_teacher_with_other_tags_is_refused(teacher, ner_files, tmp_path):
    sentences = read_ner(ner_files["valid"]).sentences[:2]
    with pytest.raises(
        InputError, match=r"--teacher .*teacher has labels .* a teacher must score the same labels"
    ):
        distill.teacher_word_logits(Distillation((str(teacher),)), sentences, ["O", "B-X", "I-X"], tmp_path)


def _loss(teacher_logits, student_logits, labels, weight):
    trainer = distill.TokenDistillationTrainer.__new__(distill.TokenDistillationTrainer)
    trainer.distillation = Distillation(("t",), temperature=2.0, weight=weight)

    class Model:
        def __call__(self, **inputs):
            return type("Out", (), {"logits": student_logits})()

    return trainer.compute_loss(
        Model(), {"input_ids": torch.zeros(1), "labels": labels, "teacher_logits": teacher_logits}
    )


def test_the_loss_mixes_kl_and_cross_entropy_per_labelled_word():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    labels = torch.tensor([[-100, 0, 2, -100, -100], [-100, 1, 1, 0, -100]])
    teacher[labels == -100] = float("nan")
    kept = labels != -100
    ce = torch.nn.functional.cross_entropy(student[kept], labels[kept], reduction="none")
    p = torch.softmax(teacher[kept] / 2, dim=1)
    kl = (p * (torch.log(p) - torch.log_softmax(student[kept] / 2, dim=1))).sum(dim=1) * 4
    torch.testing.assert_close(_loss(teacher, student, labels, 0.0), ce.mean())
    torch.testing.assert_close(_loss(teacher, student, labels, 1.0), kl.mean())
    torch.testing.assert_close(_loss(teacher, student, labels, 0.3), (0.3 * kl + 0.7 * ce).mean())
    missing = teacher.clone()
    missing[0, 1] = float("nan")  # a word the teacher has no tokens for learns from its tag alone
    expected = torch.cat([ce[:1], 0.3 * kl[1:] + 0.7 * ce[1:]]).mean()
    torch.testing.assert_close(_loss(missing, student, labels, 0.3), expected)


def test_an_unlabeled_word_learns_from_the_teacher_alone_whatever_the_weight():
    torch.manual_seed(0)
    student, teacher = torch.randn(1, 6, 3), torch.randn(1, 6, 3)
    labels = torch.tensor([[-100, 2, 0, UNLABELED, UNLABELED, -100]])
    teacher[labels == -100] = float("nan")
    kept = labels != -100
    p = torch.softmax(teacher[kept] / 2, dim=1)
    kl = (p * (torch.log(p) - torch.log_softmax(student[kept] / 2, dim=1))).sum(dim=1) * 4
    ce = torch.nn.functional.cross_entropy(student[kept][:2], labels[kept][:2], reduction="none")
    for w in (0.0, 0.3, 1.0):
        per_word = torch.cat([w * kl[:2] + (1 - w) * ce, kl[2:]])
        torch.testing.assert_close(_loss(teacher, student, labels, w), per_word.mean())
    missing = teacher.clone()
    missing[0, 4] = float("nan")  # no tag and no teacher row: that word teaches nothing
    expected = torch.cat([0.3 * kl[:2] + 0.7 * ce, kl[2:3]]).mean()
    torch.testing.assert_close(_loss(missing, student, labels, 0.3), expected)


def test_a_distilled_run_learns_and_says_from_what(teacher, ner_base, ner_files, tmp_path):
    output = tmp_path / "student"
    config = TrainConfig(
        data=str(ner_files["train"]), validation=str(ner_files["valid"]), test=str(ner_files["test"]),
        base=str(ner_base), output=str(output), epochs=2,
        distillation=Distillation((str(teacher),), temperature=2.0, weight=0.5), **FAST,
    )  # fmt: skip
    result = train(config)
    assert result.metrics["test"]["overall"]["f1"] > 0.9
    assert list((output / "teacher_logits").rglob("part-*.npy"))
    resolved = json.loads((output / "training_config.json").read_text())["resolved"]
    assert resolved["teachers"] == [str(teacher)]
    card = (output / "README.md").read_text()
    assert f"| distilled from | `{teacher}` |" in card
    assert "0.5 x KL at temperature 2.0" in card


def test_evaluation_batches_keep_the_models_own_loss(teacher, tmp_path):
    model = AutoModelForTokenClassification.from_pretrained(teacher).eval()  # no dropout: one loss
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = distill.TokenDistillationTrainer(model=model, args=args, distillation=Distillation(("t",)))
    inputs = {"input_ids": torch.tensor([[1, 2, 3]]), "labels": torch.tensor([[-100, 1, 2]])}
    expected = model(**inputs).loss
    torch.testing.assert_close(trainer.compute_loss(model, dict(inputs)), expected)
