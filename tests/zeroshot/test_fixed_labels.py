"""Bulk zero-shot prediction (`predict --labels`'s engine): `FixedLabels` through `bulk.local`
writes the zero-shot call's answers in predict's columns, resumes only with the same labels, and
`load_zero_shot` refuses a trained text classifier."""

from __future__ import annotations

import csv
import json

import pytest

from clearpipe.bulk.local import PredictJob, predict_file
from clearpipe.errors import CheckpointError, InputError
from clearpipe.zeroshot import FixedLabels, load_zero_shot, parse_labels

LABELS = "World,Sports,Sci/Tech=science and technology news"
TEXTS = ["The striker scored twice", "A faster chip for laptops", "Talks resume in Geneva", "the team lost"]


@pytest.fixture(scope="module")
def model(tiny_encoder):
    return load_zero_shot(tiny_encoder, device="cpu", dtype="float32")


def table(path, texts):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "text_pair"])  # a pair-looking column stays a plain column
        writer.writerows([i, text, "x"] for i, text in enumerate(texts))
    return path


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def job(source, out, fixed, **options):
    return PredictJob(source, out, chunk_rows=2, zero_shot=fixed.record(), **options)


def test_rows_get_the_zero_shot_calls_answer_in_predicts_columns(model, tmp_path):
    fixed = FixedLabels(model, LABELS)
    source = table(tmp_path / "in.csv", [*TEXTS[:2], " ", *TEXTS[2:]])
    summary = predict_file(fixed, job(source, tmp_path / "out.csv", fixed, top_k=None))
    assert (summary.rows, summary.empty) == (5, 1)
    got = rows(tmp_path / "out.csv")
    assert list(got[0]) == ["id", "text", "text_pair", "label", "score", "top_k"]
    assert got[2]["label"] == got[2]["score"] == got[2]["top_k"] == ""  # the empty text
    expected = model(TEXTS, candidate_labels=parse_labels(LABELS))
    for row, answer in zip([got[0], got[1], got[3], got[4]], expected, strict=True):
        assert row["label"] == answer["labels"][0]
        assert float(row["score"]) == pytest.approx(answer["scores"][0], abs=1e-5)
        ranked = json.loads(row["top_k"])
        assert [r["label"] for r in ranked] == answer["labels"]
        assert [r["score"] for r in ranked] == pytest.approx(answer["scores"], abs=1e-5)


def test_multi_label_writes_the_labels_that_apply(model, tmp_path):
    fixed = FixedLabels(model, "sports", template="This is about {}.", multi_label=True)
    predict_file(fixed, job(table(tmp_path / "in.csv", TEXTS), tmp_path / "out.jsonl", fixed))
    expected = model.predict(TEXTS, ["sports"], "This is about {}.", multi_label=True).scores[:, 0]
    got = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for row, score in zip(got, expected, strict=True):
        assert row["label"] == "sports" and row["score"] == pytest.approx(score, abs=1e-5)
        assert row["labels"] == (["sports"] if score >= 0.5 else [])


def test_resume_continues_with_the_same_labels_and_refuses_others(model, tmp_path):
    fixed = FixedLabels(model, LABELS)
    source, out = table(tmp_path / "in.csv", TEXTS * 3), tmp_path / "out.csv"

    def stop(chunk):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_file(fixed, job(source, out, fixed), stop)
    other = FixedLabels(model, "World,Sports")
    with pytest.raises(InputError, match="zero_shot"):
        predict_file(other, job(source, out, other, resume=True))
    summary = predict_file(fixed, job(source, out, fixed, resume=True))
    assert (summary.rows, summary.resumed_rows) == (12, 2)
    assert [r["id"] for r in rows(out)] == [str(i) for i in range(12)]


def test_a_missing_text_names_its_file_row_and_column(model, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "fine"}\n{"text": null}\n', encoding="utf-8")
    fixed = FixedLabels(model, LABELS)
    with pytest.raises(InputError, match=r"in\.jsonl.*row 2.*text"):
        predict_file(fixed, job(source, tmp_path / "out.csv", fixed))


def test_labels_are_checked_when_fixed(model):
    with pytest.raises(InputError, match="at least 2"):
        FixedLabels(model, "only")
    with pytest.raises(InputError, match="twice"):
        FixedLabels(model, "a,a")
    with pytest.raises(InputError, match=r"\{\}"):
        FixedLabels(model, "a,b", template="no braces")


def test_a_trained_text_classifier_is_not_a_zero_shot_model(tiny_bert):
    with pytest.raises(CheckpointError, match=r"text classifier.*negative, positive"):
        load_zero_shot(tiny_bert)
