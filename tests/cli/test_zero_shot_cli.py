"""`classify --labels` (zero-shot) and `embed` on the command line answer as the Python API does."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from clearpipe.zeroshot import load_embedder, load_zero_shot, parse_labels
from cli.helpers import assert_user_error, run

LABELS = "World,Sports,Sci/Tech=science and technology news"
TEXTS = ["The striker scored twice in the final", "A faster chip for laptops", "Talks resume in Geneva"]


@pytest.fixture(scope="module")
def encoder(tiny):
    return tiny("bert", 2)


@pytest.mark.slow
def test_classify_labels_json_is_the_python_apis_answer(encoder):
    result = run("classify", "--model", encoder, "--labels", LABELS, "--json", *TEXTS, "")
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    expected = load_zero_shot(str(encoder))(TEXTS, candidate_labels=parse_labels(LABELS))
    assert got[-1] is None  # the empty text
    for g, e in zip(got[:-1], expected, strict=True):
        assert g["sequence"] == e["sequence"] and g["labels"] == e["labels"]
        assert g["scores"] == pytest.approx(e["scores"], abs=1e-6)


@pytest.mark.slow
def test_classify_labels_prints_the_best_label_and_refuses_what_does_not_apply(encoder):
    table = run("classify", "--model", encoder, "--labels", LABELS, *TEXTS)
    assert table.returncode == 0, table.stderr
    assert all(text in table.stdout for text in TEXTS)
    assert_user_error(run("classify", "--labels", "only-one", "x"), "at least 2 candidate labels")
    assert_user_error(run("classify", "--labels", "a,a", "x"), "a")
    assert_user_error(run("classify", "--labels", LABELS, "--template", "no braces", "x"), "{}")
    assert_user_error(run("classify", "--labels", LABELS, "--min-score", "0.5", "x"), "--min-score")


@pytest.mark.slow
def test_embed_writes_the_python_apis_embeddings_beside_the_columns(encoder, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,a fine film\n2,\n3,an awful plot\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    result = run("embed", source, "-o", out, "--model", encoder, "--chunk-rows", "2")
    assert result.returncode == 0, result.stderr
    assert "1 rows had an empty text" in result.stderr
    table = pq.read_table(out).to_pylist()
    assert [row["id"] for row in table] == ["1", "2", "3"] and table[1]["embedding"] is None
    expected = load_embedder(str(encoder)).embed(["a fine film", "an awful plot"])
    got = np.array([table[0]["embedding"], table[2]["embedding"]], dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert_user_error(run("embed", source, "-o", tmp_path / "out.csv"), ".parquet")


@pytest.mark.slow
def test_predict_labels_writes_the_python_apis_best_label_per_row(encoder, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text(
        "id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate([*TEXTS, ""])), encoding="utf-8"
    )
    out = tmp_path / "out.csv"
    result = run("predict", source, "-o", out, "--model", encoder, "--labels", LABELS, "--chunk-rows", "2")
    assert result.returncode == 0, result.stderr
    assert "1 rows had an empty text" in result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,text,label,score" and lines[-1] == "3,,,"
    expected = load_zero_shot(str(encoder))(TEXTS, candidate_labels=parse_labels(LABELS))
    for line, answer in zip(lines[1:-1], expected, strict=True):
        label, score = line.rsplit(",", 2)[1:]
        assert label == answer["labels"][0] and float(score) == pytest.approx(answer["scores"][0], abs=1e-5)


@pytest.mark.slow
def test_predict_labels_refuses_what_makes_no_sense_in_one_line(encoder, tiny_bert, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("text,text_pair\na,b\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    zero_shot = ("predict", source, "-o", out, "--labels", LABELS)
    assert_user_error(run(*zero_shot, "--lite", "--model", encoder), "--lite")
    assert_user_error(run(*zero_shot, "--engine", "ray"), "--engine local")
    assert_user_error(run(*zero_shot, "--text-pair-column", "text_pair"), "--text-pair-column")
    assert_user_error(run(*zero_shot, "--min-score", "0.5"), "--min-score")
    assert_user_error(run(*zero_shot, "--model", tiny_bert), "text classifier", "negative, positive")
    assert_user_error(run("predict", source, "-o", out, "--multi-label"), "--labels")
    assert_user_error(run("predict", source, "-o", tmp_path / "o.txt", "--labels", LABELS), ".txt")
    assert not out.exists()
