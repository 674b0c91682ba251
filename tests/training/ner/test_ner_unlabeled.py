"""`--unlabeled` sentences for a distilled tagger: read from text lines, CoNLL words or JSONL, their
words labelled for the teacher alone, and a student that learns from them what its few labelled
sentences do not teach."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoTokenizer

from clearpipe.errors import InputError
from clearpipe.training.distill import Distillation
from clearpipe.training.ner.features import IGNORED, UNLABELED, to_dataset
from clearpipe.training.ner.read import read_ner
from clearpipe.training.ner.train import train
from clearpipe.training.ner.unlabeled import read_unlabeled_words
from clearpipe.training.train import TrainConfig
from cli.helpers import assert_user_error, run

FAST = {"batch_size": 16, "learning_rate": 5e-3, "bf16": False, "patience": None, "seed": 0}


def test_text_lines_are_split_into_words_as_conll_writes_them(tmp_path):
    path = tmp_path / "news.txt"
    path.write_text("Toshiba Corp. opened in Tokyo.\n\n  \nU.S.-based Apple's shares\n", encoding="utf-8")
    read = read_unlabeled_words(path)
    assert read.sentences == [
        ("Toshiba", "Corp", ".", "opened", "in", "Tokyo", "."),
        ("U", ".", "S", ".", "-", "based", "Apple", "'", "s", "shares"),
    ]
    assert read.tokens == 17 and read.format == "text lines"


def test_conll_words_are_read_and_their_tags_are_not(ner_files):
    read = read_unlabeled_words(ner_files["valid"])
    assert read.sentences == [s.words for s in read_ner(ner_files["valid"]).sentences]
    assert read.format.startswith("conll")


def test_jsonl_rows_give_tokens_or_text(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"tokens": ["Mary", "lives", "in", "Rome"]}, {"text": "Paul works for Google."}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert read_unlabeled_words(path).sentences == [
        ("Mary", "lives", "in", "Rome"),
        ("Paul", "works", "for", "Google", "."),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"tokens": ["a"]}\n[1, 2]\n', r"rows\.jsonl, row 2: not a JSON object"),
        ('{"tokens": ["a", 3]}\n', r'rows\.jsonl, row 1, field "tokens": expected a list of strings'),
        ('{"words": ["a"]}\n', r'row 1: expected "tokens" \(a list of words\) or "text"'),
        ("{oops\n", r"row 1: not a JSON object"),
        ("\n\n", r"--unlabeled .*rows\.jsonl: no words"),
    ],
)
def test_a_bad_jsonl_row_is_named(tmp_path, body, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_unlabeled_words(path)


def test_other_files_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"--unlabeled .*none\.txt: no such file"):
        read_unlabeled_words(tmp_path / "none.txt")
    table = tmp_path / "t.csv"
    table.write_text("text\nhello\n")
    with pytest.raises(InputError, match=r"expected \.txt \(one text a line\), CoNLL columns, or \.jsonl"):
        read_unlabeled_words(table)


def test_unlabeled_words_carry_the_teachers_rows_and_no_gold_tag(ner_base, ner_files):
    tokenizer = AutoTokenizer.from_pretrained(ner_base)
    sentences = read_ner(ner_files["valid"]).sentences[:2]
    unlabeled = [("mary", "lives", "in", "rome")]
    tags = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    teacher = [np.full((len(s.words), len(tags)), i, np.float32) for i, s in enumerate(sentences)]
    teacher.append(np.arange(4 * len(tags), dtype=np.float32).reshape(4, len(tags)))
    dataset = to_dataset(tokenizer, sentences, tags, 64, teacher, unlabeled)
    assert len(dataset) == 3
    row = dataset[2]
    assert [label for label in row["labels"] if label != IGNORED] == [UNLABELED] * 4
    on_words = [t for t, label in zip(row["teacher_logits"], row["labels"], strict=True) if label != IGNORED]
    np.testing.assert_array_equal(on_words, teacher[2])
    assert all(label >= 0 for label in dataset[0]["labels"] if label != IGNORED)
    with pytest.raises(InputError, match="--unlabeled sentences learn from a teacher"):
        to_dataset(tokenizer, sentences, tags, 64, None, unlabeled)


def _few(ner_files, tmp_path, n: int):
    sentences = read_ner(ner_files["train"]).sentences[:n]
    path = tmp_path / "few.conll"
    path.write_text(
        "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(s.words, s.tags, strict=True)) for s in sentences)
        + "\n",
        encoding="utf-8",
    )
    return path


def test_a_student_learns_from_the_teachers_tags_on_unlabeled_sentences(
    teacher, ner_base, ner_files, tmp_path
):
    few = _few(ner_files, tmp_path, 12)
    words = tmp_path / "words.txt"
    words.write_text(
        "\n".join(" ".join(s.words) for s in read_ner(ner_files["train"]).sentences[12:]) + "\n",
        encoding="utf-8",
    )
    common = {
        "data": str(few), "validation": str(ner_files["valid"]), "test": str(ner_files["test"]),
        "base": str(ner_base), "epochs": 2, "distillation": Distillation((str(teacher),), 2.0, 0.5), **FAST,
    }  # fmt: skip
    alone = train(TrainConfig(output=str(tmp_path / "alone"), **common))
    taught = train(TrainConfig(output=str(tmp_path / "taught"), unlabeled=str(words), **common))
    assert taught.metrics["test"]["overall"]["f1"] > 0.9
    assert taught.metrics["test"]["overall"]["f1"] > alone.metrics["test"]["overall"]["f1"] + 0.1
    config = json.loads((tmp_path / "taught" / "training_config.json").read_text())
    assert config["resolved"]["unlabeled_sentences"] == 188
    assert config["arguments"]["unlabeled"] == str(words)
    card = (tmp_path / "taught" / "README.md").read_text()
    assert f"| unlabeled sentences | 188 from `{words}`, tagged by the teacher alone |" in card
    cached = [np.load(p) for p in (tmp_path / "taught" / "teacher_logits").rglob("part-*.npy")]
    assert sum(len(part) for part in cached) == sum(
        len(s.words) for s in read_ner(ner_files["train"]).sentences
    )


def test_the_cli_asks_for_a_teacher(ner_files, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("mary lives in rome\n")
    result = run("train", ner_files["train"], "--unlabeled", words, "--output", tmp_path / "m")
    assert_user_error(result, "--unlabeled", "--teacher")
    assert not (tmp_path / "m").exists()


def test_a_bad_unlabeled_row_is_one_error_line_and_leaves_no_folder(ner_files, ner_base, tmp_path):
    rows = tmp_path / "news.jsonl"
    rows.write_text('{"tokens": ["Mary", "lives"]}\n{"tokens": "Rome"}\n')
    result = run(
        "train", ner_files["train"], "--base", ner_base, "--teacher", ner_base, "--unlabeled", rows,
        "--output", tmp_path / "m",
    )  # fmt: skip
    assert_user_error(result, "news.jsonl, row 2", '"tokens"')
    assert not (tmp_path / "m").exists()
