"""`clearpipe trace` on a token-classification (NER) model: the per-token table, how tokens became
words and entities, stage timings; the JSON is the schema's token-classification variant; the
terminal and HTML views show it; the answer is `clf(text)`'s."""

from __future__ import annotations

import json

import jsonschema
import pytest
from rich.console import Console

import clearpipe
from clearpipe.errors import InputError
from clearpipe.trace.html import to_html
from clearpipe.trace.record import json_schema
from clearpipe.trace.terminal import render
from cli.helpers import assert_user_error, run

TEXT = "the film was great, cafe worldly market price!"
STAGES = ["input", "tokenizer", "model", "activation", "aggregation"]


@pytest.fixture(scope="module", params=["bert", "roberta"])
def ner(request, ner_bert, ner_roberta):
    return clearpipe.load(ner_bert if request.param == "bert" else ner_roberta, dtype="float32", device="cpu")


def validate(data: dict) -> None:
    jsonschema.Draft202012Validator(json_schema()).validate(data)


@pytest.mark.parametrize("strategy", ["word", "none", "simple", "first", "average", "max"])
def test_the_trace_answers_what_the_classifier_answers(ner, strategy):
    ner.settings = type(ner.settings)(**{**ner.settings.__dict__, "aggregation_strategy": strategy})
    try:
        trace, expected = ner.trace(TEXT), ner(TEXT)
        data = trace.to_dict()
    finally:
        ner.settings = type(ner.settings)(**{**ner.settings.__dict__, "aggregation_strategy": "word"})
    validate(data)
    assert data["task"] == "token-classification" and data["schema_version"] == 1
    assert [stage["name"] for stage in data["stages"]] == STAGES
    assert all(stage["time_ms"] >= 0 for stage in data["stages"])
    assert data["stages"][4]["strategy"] == strategy
    assert [found.answer for found in trace.entities] == expected == data["entities"]


def test_tokens_carry_offsets_word_ids_and_their_best_labels(ner):
    trace = ner.trace(TEXT)
    spans = ner.tokenize([TEXT]).inputs[0]
    probabilities = ner.probabilities(ner.logits(ner.tokenize([TEXT]))[0])
    assert [row.token for row in trace.tokens] == spans.tokens
    for row in trace.tokens:
        assert row.word == spans.words[row.index]
        assert row.span == (None if row.special else spans.offsets[row.index])
        best = int(probabilities[row.index].argmax())
        assert row.top[0] == (ner.labels[best], pytest.approx(float(probabilities[row.index][best])))
        assert [p for _, p in row.top] == sorted((p for _, p in row.top), reverse=True)


def test_words_and_entities_name_the_tokens_they_were_grouped_from(ner):
    trace = ner.trace(TEXT)
    words = [unit.tokens for unit in trace.units]
    content = [row.index for row in trace.tokens if not row.special]
    assert [i for unit in words for i in unit] == content  # every text token in exactly one word
    for unit in trace.units:
        assert all(trace.tokens[i].word == trace.tokens[unit.tokens[0]].word for i in unit.tokens)
    for found in trace.entities:
        first, last = trace.tokens[found.tokens[0]], trace.tokens[found.tokens[-1]]
        assert (first.span[0], last.span[1]) == (found.answer["start"], found.answer["end"])


def test_a_long_text_shows_its_windows(ner_bert):
    ner = clearpipe.load(ner_bert, dtype="float32", max_length=16)
    text = "the new company in the world market " * 6
    trace = ner.trace(text)
    assert len(trace.windows) > 1
    assert trace.windows[0][0] == 1 and trace.windows[-1][1] == len(trace.tokens) - 1
    assert [found.answer for found in trace.entities] == ner(text)
    validate(trace.to_dict())


def test_terminal_and_html_views_show_tokens_words_and_entities(ner):
    trace = ner.trace(TEXT)
    console = Console(record=True, width=160)
    render(trace, console)
    shown = console.export_text()
    for name in (
        "1 input",
        "2 tokenizer",
        "3 model",
        "4 activation",
        "5 aggregation",
        "top 3 labels",
        "entities",
    ):
        assert name in shown
    assert f"strategy '{trace.strategy}'" in shown
    page = to_html(trace)
    assert (
        "<table id='tokens'>" in page
        and "<table id='entities'>" in page
        and "http" not in page.split("</title>")[1]
    )
    assert all(f"<b>{found.answer['entity_group']}</b>" in page for found in trace.entities)


def test_sequence_traces_still_validate_and_are_not_token_traces(tiny_bert):
    data = clearpipe.load(tiny_bert).trace("a fine film", attributions=False).to_dict()
    validate(data)
    assert "task" not in data
    with pytest.raises(jsonschema.ValidationError):
        validate({**data, "task": "token-classification"})


def test_a_pair_is_refused(ner):
    with pytest.raises(InputError, match="pair"):
        ner.trace(TEXT, pair="another")


def test_trace_on_the_command_line(ner_bert, tmp_path):
    page = tmp_path / "t.html"
    as_json = run("trace", TEXT, "--model", ner_bert, "--json", "--html", page, timeout=300)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    validate(data)
    assert data["entities"] == clearpipe.load(ner_bert)(TEXT)
    assert "<table id='tokens'>" in page.read_text(encoding="utf-8")
    shown = run("trace", TEXT, "--model", ner_bert, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "5 aggregation" in shown.stdout and "top 3 labels" in shown.stdout
    assert_user_error(run("trace", TEXT, "--model", ner_bert, "--pair", "x"), "pair")
