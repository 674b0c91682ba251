"""Named-entity files: CoNLL columns, JSONL tokens/tags and JSONL text/spans read into IOB2
sentences, their shape detected, and every kind of bad input refused on one line naming the file
and its line or row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearpipe.errors import ClearpipeError, InputError
from clearpipe.training.ner.read import ner_format, read_ner
from clearpipe.training.ner.words import Span, spans_to_tags, split_words

FIXTURE = Path(__file__).parent / "fixtures" / "tiny.conll"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(folder: Path, name: str, rows: list[dict]) -> Path:
    return write(folder, name, "".join(json.dumps(r) + "\n" for r in rows))


def test_conll_fixture_reads_into_sentences():
    read = read_ner(FIXTURE)
    assert (read.format, read.scheme) == ("conll", "IOB2")
    assert [s.line for s in read.sentences] == [3, 12, 22]  # -DOCSTART- lines are not sentences
    first = read.sentences[0]
    assert first.words[:2] == ("Maria", "Lopez")
    assert first.tags == ("B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O")


def test_conll_with_four_columns_takes_the_last_as_tag(tmp_path):
    path = write(tmp_path, "a.conll", "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP I-PER\n")
    read = read_ner(path)
    assert read.scheme == "IOB1"
    assert [s.tags for s in read.sentences] == [("B-ORG", "O"), ("B-PER",)]


def test_bioes_conll_is_converted(tmp_path):
    path = write(tmp_path, "a.conll", "New B-LOC\nYork E-LOC\nAda S-PER\n")
    assert read_ner(path).sentences[0].tags == ("B-LOC", "I-LOC", "B-PER")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("EU B-ORG\nrejects O x\n", "a.conll, line 2: 3 columns where the file has 2"),
        ("EU\n", "a.conll, line 1: 1 columns where the file has 2"),
        ("EU B-ORG\n\nrejects X-PER\n", "a.conll, line 3: tag 'X-PER' is not O or B-/I-/E-/S-"),
        ("A S-PER\nB O\nC I-PER\nD E-PER\n", "a.conll, line 3: I-PER where BIOES expects O, B- or S-"),
    ],
)
def test_bad_conll_lines_are_named(tmp_path, text, message):
    path = write(tmp_path, "a.conll", text)
    with pytest.raises(InputError) as error:
        read_ner(path)
    assert str(error.value).startswith(str(tmp_path / message))


def test_a_stray_bioes_tag_in_iob2_names_the_mixed_schemes(tmp_path):
    text = "Ada B-PER\nLovelace I-PER\nwrote O\n\nAlan B-PER\nmet O\nParis S-LOC\n"
    path = write(tmp_path, "a.conll", text)
    with pytest.raises(InputError) as error:
        read_ner(path)
    message = str(error.value)
    assert message.startswith(f"{path}: the file mixes tag schemes: line 7 has S-LOC, a BIOES tag")
    assert "the sentence at line 1 has no E-/S- tag and is not valid BIOES" in message
    assert "fix the stray E-/S- tags" in message


def test_jsonl_tokens_and_tags(tmp_path):
    path = jsonl(
        tmp_path, "a.jsonl", [{"tokens": ["Ada", "Lovelace", "wrote"], "tags": ["B-PER", "I-PER", "O"]}]
    )
    read = read_ner(path)
    assert (read.format, read.sentences[0].line) == ("tokens", 1)
    assert read.sentences[0].tags == ("B-PER", "I-PER", "O")


def test_jsonl_tokens_errors_name_the_row(tmp_path):
    rows = [{"tokens": ["a"], "tags": ["O"]}, {"tokens": ["a", "b"], "tags": ["O"]}]
    with pytest.raises(InputError, match=r"a.jsonl, row 2: 2 tokens but 1 tags"):
        read_ner(jsonl(tmp_path, "a.jsonl", rows))
    rows = [{"tokens": ["a"], "tags": ["O"]}, {"tokens": ["a"], "tags": ["B-"]}]
    with pytest.raises(InputError, match=r"a.jsonl, row 2, tag 1: tag 'B-'"):
        read_ner(jsonl(tmp_path, "a.jsonl", rows))


def test_jsonl_spans_align_to_words(tmp_path):
    text = "Dr. Ada Lovelace met C. Babbage in London."
    entities = [{"start": 4, "end": 17, "label": "PER"}, {"start": 35, "end": 41, "label": "LOC"}]
    read = read_ner(jsonl(tmp_path, "a.jsonl", [{"text": text, "entities": entities}]))
    sentence = read.sentences[0]
    assert read.format == "spans"
    assert sentence.words == ("Dr", ".", "Ada", "Lovelace", "met", "C", ".", "Babbage", "in", "London", ".")
    # The first span ends with a space: trimmed, it still falls on word boundaries.
    assert sentence.tags == ("O", "O", "B-PER", "I-PER", "O", "O", "O", "O", "O", "B-LOC", "O")


@pytest.mark.parametrize(
    ("entities", "message"),
    [
        (
            [{"start": 1, "end": 8, "label": "PER"}],
            "row 2, entity 1 ('PER', characters 1-8, 'da Love') does not fall on word boundaries",
        ),
        (
            [{"start": 4, "end": 99, "label": "PER"}],
            "row 2, entity 1: end 99 is past the text's end (16 characters)",
        ),
        (
            [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "PER"}],
            "row 2: entities 1 and 2 overlap",
        ),
        ([{"start": 0, "end": 3}], 'row 2, entity 1: "label" must be a type name'),
        (
            [{"start": "0", "end": 3, "label": "PER"}],
            'row 2, entity 1: "start" and "end" must be whole numbers',
        ),
    ],
)
def test_bad_spans_are_named(tmp_path, entities, message):
    rows = [{"text": "fine", "entities": []}, {"text": "Ada Lovelace ok.", "entities": entities}]
    with pytest.raises(InputError) as error:
        read_ner(jsonl(tmp_path, "a.jsonl", rows))
    assert message in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "a.jsonl"))


def test_formats_are_detected_by_shape(tmp_path):
    assert ner_format(FIXTURE) == "conll"
    assert ner_format(write(tmp_path, "a.txt", "Peter B-PER\nsaid O\n")) == "conll"
    assert ner_format(write(tmp_path, "b.txt", "a plain text line\n")) is None
    assert ner_format(jsonl(tmp_path, "c.jsonl", [{"text": "x", "entities": []}])) == "spans"
    assert ner_format(jsonl(tmp_path, "d.jsonl", [{"tokens": [], "tags": []}])) == "tokens"
    assert ner_format(jsonl(tmp_path, "e.jsonl", [{"text": "x", "label": "pos"}])) is None
    assert ner_format(write(tmp_path, "f.csv", "text,label\nx,1\n")) is None


def test_a_table_is_not_read_as_entities(tmp_path):
    with pytest.raises(InputError, match="not a named-entity file"):
        read_ner(write(tmp_path, "f.csv", "text,label\nx,1\n"))


WORDS = st.lists(
    st.sampled_from(["Ada", "New", "York", ",", ".", "met", "O'Neil", "U.S.", "3"]), min_size=1, max_size=12
)


@given(words=WORDS, data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_spans_on_word_boundaries_round_trip(words, data):
    text = " ".join(words)
    split = split_words(text)
    # Random non-overlapping runs of whole words, each an entity.
    cuts = sorted(data.draw(st.sets(st.integers(0, len(split)), max_size=6)))
    runs = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b]
    spans = [Span(split[a].start, split[b - 1].end, "PER") for a, b in runs]
    tags = spans_to_tags(text, spans, split, "row 1")
    expected = ["O"] * len(split)
    for a, b in runs:
        expected[a:b] = ["B-PER"] + ["I-PER"] * (b - a - 1)
    assert tags == expected


@given(st.lists(st.one_of(st.text(max_size=30), st.just('{"tokens": ["a"], "tags": ["O"]}')), max_size=5))
@settings(max_examples=60, deadline=None)
def test_any_jsonl_is_read_or_refused_as_a_user_error(lines):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.jsonl"
        path.write_text('{"tokens": ["a"], "tags": ["O"]}\n' + "\n".join(lines) + "\n", encoding="utf-8")
        try:
            read_ner(path)
        except ClearpipeError as exc:
            assert "\n" not in str(exc) and "x.jsonl, row" in str(exc)
