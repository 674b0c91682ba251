"""`clearpipe train` on a CoNLL file and `clearpipe evaluate` on the tagger it writes, run as a user
would (a separate process); bad named-entity input ends in one error line naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.helpers import assert_user_error, run

FIXTURE = Path(__file__).parent / "fixtures" / "tiny.conll"


@pytest.fixture(scope="module")
def trained(ner_base, ner_files, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("ner-cli") / "model"
    result = run(
        "train", ner_files["train"], "--validation", ner_files["valid"], "--base", ner_base,
        "--output", output, "--epochs", "1", "--lr", "5e-3", "--batch-size", "16", "--no-bf16",
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "data: named entities, 3 types (LOC, ORG, PER)" in result.stdout
    assert "entity F1" in result.stdout and "seconds" in result.stdout
    return output


def test_evaluate_json_gives_entity_figures(trained, ner_files):
    result = run("evaluate", trained, ner_files["test"], "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["overall"]["f1"] > 0.9
    assert set(figures["per_type"]) == {"LOC", "ORG", "PER"}
    assert figures["sentences"] == 40


def test_evaluate_prints_a_table(trained, tmp_path):
    # Types the model never saw count as missed: the fixture's MISC entity is in "(missed)".
    result = run("evaluate", trained, FIXTURE)
    assert result.returncode == 0, result.stderr
    assert "3 sentences, 18 tokens: entity F1" in result.stdout
    assert "MISC" in result.stdout and "(missed)" in result.stdout
    assert "sentences with the most wrong entities" in result.stdout


def test_bad_conll_is_one_error_line(tmp_path, ner_base):
    bad = tmp_path / "bad.conll"
    bad.write_text("Ada B-PER\nsaid O extra\n")
    result = run("train", bad, "--base", ner_base, "--output", tmp_path / "m")
    assert_user_error(result, "bad.conll, line 2: 3 columns where the file has 2")
    assert len(result.stderr.strip().splitlines()) == 1


def test_task_ner_refuses_a_table(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("text,label\na,1\n")
    result = run("train", table, "--task", "ner", "--output", tmp_path / "m")
    assert_user_error(result, "t.csv is not a named-entity file")


def test_classification_flags_are_refused_by_name(ner_files, tmp_path):
    result = run("train", ner_files["train"], "--class-weights", "auto", "--output", tmp_path / "m")
    assert_user_error(result, "--class-weights", "not used by named-entity training")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--method", "setfit"], "--method setfit"),
        (["--setfit-iterations", "20"], "--setfit-iterations"),  # the default, given: still refused
        (["--label-prior"], "--label-prior"),
        (["--no-label-prior"], "--no-label-prior"),
    ],
)
def test_setfit_flags_are_refused_by_name(ner_files, tmp_path, flags, named):
    # a base that does not exist: were the flag ignored, the run would stop there, not train
    result = run("train", ner_files["train"], *flags, "--base", tmp_path / "none", "--output", tmp_path / "m")
    assert_user_error(result, named, "not used by named-entity training")
    assert not (tmp_path / "m").exists()
