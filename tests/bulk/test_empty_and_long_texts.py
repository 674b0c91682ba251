"""Texts that are empty get no label and no score, and are counted; a huge text is cut before it
reaches the tokenizer, without changing what the model sees."""

from __future__ import annotations

import csv
import json

import pytest

import clearpipe
from clearpipe.bulk.local import PredictJob, predict_file
from cli.helpers import run


@pytest.fixture(scope="module")
def clf(tiny_bert):
    return clearpipe.load(tiny_bert, device="cpu")


@pytest.mark.slow
def test_predict_leaves_empty_texts_unlabelled_and_counts_them(tiny_bert, tmp_path):
    source = tmp_path / "in.csv"
    rows = [["1", "a good film"], ["2", ""], ["3", "   "], ["4", "a bad film"]]
    with open(source, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "review"], *rows])
    out = tmp_path / "out.jsonl"
    result = run("predict", source, "-o", out, "-m", tiny_bert, "--top-k", "2", "--chunk-rows", "3")
    assert result.returncode == 0, result.stderr
    assert "wrote 4 rows to" in result.stderr and "2 rows had an empty text" in result.stderr
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in got] == ["1", "2", "3", "4"]
    assert [(r["label"], r["score"], r["top_k"]) for r in got[1:3]] == [(None, None, None)] * 2
    expected = clearpipe.load(tiny_bert, device="cpu")(["a good film", "a bad film"])
    assert [r["label"] for r in (got[0], got[3])] == [e["label"] for e in expected]


def test_the_count_of_empty_texts_survives_a_resume(clf, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("good\n\nbad\n\n\nfine\n", encoding="utf-8")
    out = tmp_path / "out.csv"

    def stop(chunk):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_file(clf, PredictJob(source, out, chunk_rows=2), stop)
    summary = predict_file(clf, PredictJob(source, out, chunk_rows=2, resume=True))
    assert (summary.rows, summary.resumed_rows, summary.empty) == (6, 2, 3)
    with open(out, newline="", encoding="utf-8") as f:
        assert [r["label"] == "" for r in csv.DictReader(f)] == [False, True, False, True, True, False]


@pytest.mark.slow
def test_classify_marks_empty_texts(tiny_bert):
    result = run("classify", "--model", tiny_bert, "--json", "a good film", "", " ")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[1:] == [{"label": None, "score": None}] * 2 and lines[0]["label"]
    assert "2 of 3 texts were empty" in result.stderr


def test_a_huge_text_is_cut_before_tokenizing_with_the_same_prediction(clf, tmp_path):
    huge = "the film was good but the story was boring " * 20_000  # 860,000 characters
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"text": huge}) + "\n" + json.dumps({"text": "bad"}) + "\n", encoding="utf-8"
    )
    out = tmp_path / "out.jsonl"
    predict_file(clf, PredictJob(source, out))
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["text"] == huge  # the output keeps the whole cell
    # The tokenizer stage cuts the text (tests/test_preprocess.py): the same prediction as the
    # first max_length tokens.
    whole = clf(" ".join(huge.split()[: clf.max_length]))
    assert first["label"] == whole["label"] and first["score"] == pytest.approx(whole["score"], abs=1e-6)
