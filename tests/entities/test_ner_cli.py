"""`clearpipe classify` and `predict` with a token-classification model, run as a user would."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import clearpipe
from cli.helpers import assert_user_error, run

CONLL = Path(__file__).parents[1] / "training" / "ner" / "fixtures" / "tiny.conll"
TEXTS = ["the film was great, cafe worldly market price!", "new company in the world market", ""]


def test_classify_json_gives_the_python_apis_entities(ner_bert):
    result = run("classify", *TEXTS, "--model", ner_bert, "--json", "--dtype", "float32")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = clearpipe.load(ner_bert, dtype="float32")(TEXTS)
    assert [[(e["entity_group"], e["start"], e["end"]) for e in line] for line in lines] == [
        [(e["entity_group"], e["start"], e["end"]) for e in one] for one in expected
    ]


def test_classify_marks_entities_in_the_text(ner_bert):
    result = run("classify", TEXTS[0], "--model", ner_bert, "--dtype", "float32")
    assert result.returncode == 0, result.stderr
    first = clearpipe.load(ner_bert, dtype="float32")(TEXTS[0])[0]
    assert f"{TEXTS[0][first['start'] : first['end']]} [{first['entity_group']}]" in result.stdout


def test_predict_writes_an_entities_column_and_one_row_per_entity(ner_bert, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(TEXTS)))
    expected = clearpipe.load(ner_bert, dtype="float32")(TEXTS)
    out = tmp_path / "out.csv"
    result = run("predict", source, "--model", ner_bert, "-o", out, "--dtype", "float32")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    assert [[e["word"] for e in json.loads(r["entities"])] for r in rows] == [
        [e["word"] for e in x] for x in expected
    ]
    per = tmp_path / "per.jsonl"
    result = run(
        "predict", source, "--model", ner_bert, "-o", per, "--dtype", "float32", "--one-row-per-entity"
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in per.read_text().splitlines()]
    assert len(lines) == sum(len(x) for x in expected)
    assert {(line["row"], line["start"], line["entity_group"]) for line in lines} == {
        (i + 1, e["start"], e["entity_group"]) for i, x in enumerate(expected) for e in x
    }


def test_flags_that_mean_nothing_to_ner_are_refused(ner_bert, tiny_bert, tmp_path):
    assert_user_error(run("classify", "x", "--model", ner_bert, "--top-k", "2"), "--top-k")
    source = tmp_path / "in.txt"
    source.write_text("a\n")
    assert_user_error(
        run("predict", source, "--model", tiny_bert, "-o", tmp_path / "o.csv", "--one-row-per-entity"),
        "--one-row-per-entity",
    )


def test_trace_refuses_a_pair_for_ner_in_one_line(ner_bert):
    # trace and export run NER models (tests/entities/test_ner_trace.py, test_ner_export.py)
    assert_user_error(run("trace", "the film", "--model", ner_bert, "--pair", "x"), "pair")


def test_evaluate_errors_0_lists_no_worst_sentences(ner_bert):
    # the random tagger gets the file's entities wrong: its worst sentences by default, none for 0
    default = run("evaluate", ner_bert, CONLL, "--json")
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["worst"]
    none = run("evaluate", ner_bert, CONLL, "--json", "--errors", "0")
    assert none.returncode == 0, none.stderr
    assert json.loads(none.stdout)["worst"] == []
    one = run("evaluate", ner_bert, CONLL, "--errors", "1")
    assert one.returncode == 0, one.stderr
    assert "1 sentences with the most wrong entities" in one.stdout


def test_predict_refuses_an_input_column_it_would_overwrite(ner_bert, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text,score,row,entities\n1,Peter lives in Tokyo,0.5,7,[]\n")
    for flags, clash in (([], "['entities']"), (["--one-row-per-entity"], "['row', 'score']")):
        out = tmp_path / "out.csv"
        result = run("predict", source, "--model", ner_bert, "-o", out, *flags)
        assert_user_error(result, str(source), clash, "rename them before predicting")
        assert not out.exists() and not list(tmp_path.glob("out.csv*"))
