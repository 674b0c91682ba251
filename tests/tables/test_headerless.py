"""A headerless `label<TAB>text` file: predict, train and evaluate say it seems to have no header
row and how to proceed, and `--no-header` reads it with columns named by number."""

from __future__ import annotations

import csv

import pytest

from clearpipe.errors import InputError
from clearpipe.tables.columns import looks_like_data
from clearpipe.tables.read import read_chunks, read_columns
from clearpipe.training.data import DataOptions, read_training_data
from cli.helpers import assert_user_error, run

ROWS = [
    ("1", "it 's a charming and often affecting journey ."),
    ("0", "unflinchingly bleak and desperate"),
    ("1", "allows us to hope that nolan is poised to embark a major career"),
    ("0", "the acting , costumes , music , cinematography and sound are all astounding"),
] * 10


@pytest.fixture
def headerless(tmp_path):
    path = tmp_path / "sst2.tsv"
    path.write_text("".join(f"{label}\t{text}\n" for label, text in ROWS), encoding="utf-8")
    return path


HINT = ("seems to have no header row", "--no-header")


@pytest.mark.slow
def test_predict_says_the_file_has_no_header(headerless, tiny_bert, tmp_path):
    result = run("predict", headerless, "-o", tmp_path / "out.tsv", "--model", tiny_bert)
    assert_user_error(result, *HINT)
    assert not (tmp_path / "out.tsv").exists()


@pytest.mark.slow
def test_predict_reads_it_with_no_header(headerless, tiny_bert, tmp_path):
    out = tmp_path / "out.tsv"
    result = run("predict", headerless, "-o", out, "--model", tiny_bert, "--no-header", "--text-column", "2")
    assert result.returncode == 0, result.stderr
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert [(r["1"], r["2"]) for r in rows] == ROWS  # every row, the first one included
    assert all(r["label"] in ("negative", "positive") for r in rows)


@pytest.mark.slow
def test_train_and_evaluate_say_it_too(headerless, tiny_bert, tmp_path):
    assert_user_error(run("train", headerless, "-o", tmp_path / "m", "--base", tiny_bert), *HINT)
    assert_user_error(run("evaluate", tiny_bert, headerless), *HINT)


def test_training_data_reads_it_with_no_header(headerless):
    data = read_training_data(
        headerless, options=DataOptions(text_column="2", label_column="1", header=False, seed=0)
    )
    assert len(data.train) + len(data.validation) == len(ROWS)
    with pytest.raises(InputError, match="seems to have no header row"):
        read_training_data(headerless)


@pytest.mark.slow
def test_evaluate_reads_it_with_no_header(headerless, tiny_bert):
    result = run(
        "evaluate",
        tiny_bert,
        headerless,
        "--no-header",
        "--text-column",
        "2",
        "--label-column",
        "1",
        "--json",
    )
    assert result.returncode == 0, result.stderr


def test_the_reader_numbers_columns_and_keeps_the_first_row(headerless):
    assert read_columns(headerless, header=False) == ["1", "2"]
    (chunk,) = read_chunks(headerless, chunk_rows=100, header=False)
    assert chunk.rows[0] == {"1": "1", "2": ROWS[0][1]} and chunk.first_row == 1 and len(chunk.rows) == 40


def test_headers_that_look_like_headers_are_not_flagged():
    assert not looks_like_data(["sentence", "label"])
    assert not looks_like_data(["Review Text", "Rating Label"])
    assert looks_like_data(["3", "Wall St. Bears Claw Back Into the Black (Reuters)"])
