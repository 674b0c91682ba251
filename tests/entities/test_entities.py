"""Named entities beyond parity: windows over long texts, offsets, pre-split input, per-word tags,
the default strategy, and bad input refused in one line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clearpipe
from clearpipe import loading
from clearpipe.entities import TokenClassifier
from clearpipe.errors import ClearpipeError, InputError


@pytest.fixture(scope="module")
def ner(ner_bert) -> TokenClassifier:
    return clearpipe.load(ner_bert, dtype="float32", device="cpu")


class ByToken:
    """A stand-in runner whose logits depend on each token alone: "company" is B-ORG, "market"
    I-ORG, anything else O. Windows then change nothing, so any difference is the merge's."""

    def __init__(self, tokenizer, labels):
        self.ids = {
            tokenizer.convert_tokens_to_ids(w): labels.index(t)
            for w, t in [("company", "B-ORG"), ("market", "I-ORG")]
        }
        self.width = len(labels)

    def outputs(self, tokenized, rows):
        width = max(len(tokenized.input_ids[r]) for r in rows)
        out = np.zeros((len(rows), width, self.width), dtype=np.float32)
        out[:, :, 0] = 5.0
        for j, r in enumerate(rows):
            for t, token in enumerate(tokenized.input_ids[r]):
                if token in self.ids:
                    out[j, t, self.ids[token]] = 9.0
        return out


def with_windows(ner: TokenClassifier, max_length: int, stride: int) -> TokenClassifier:
    from clearpipe.loading import Checkpoint

    settings = dataclasses.replace(ner.settings, max_length=max_length, stride=stride)
    runner = ByToken(ner.tokenizer, ner.labels)
    return TokenClassifier(Checkpoint(ner.model, ner.tokenizer, ner.source), settings, runner)


@pytest.mark.parametrize("stride", [0, 3, 5])
@pytest.mark.parametrize("at", range(6, 16))
def test_an_entity_at_a_window_border_is_found_once(ner, stride, at):
    words = ["the"] * 30
    words[at : at + 2] = ["company", "market"]
    text = " ".join(words)
    whole = with_windows(ner, 64, 0)(text)
    windowed = with_windows(ner, 12, stride)(text)  # 10 content tokens a window
    assert windowed == whole
    assert [(e["entity_group"], text[e["start"] : e["end"]]) for e in windowed] == [("ORG", "company market")]


def test_long_texts_are_never_truncated(ner):
    text = " ".join(["the film was great, cafe worldly market price!"] * 20)  # ~220 tokens, 64 a window
    found = ner(text, aggregation_strategy="none", ignore_labels=[])
    assert len(found) == len(ner.tokenizer(text)["input_ids"]) - 2
    assert found[-1]["end"] == len(text)
    assert [e["index"] for e in found] == list(range(1, len(found) + 1))


def test_default_strategy_groups_whole_words(ner):
    text = "the worldly film, cafe!"  # worldly is world ##l ##y
    found = ner(text, ignore_labels=[])
    assert len(found) < len(ner(text, aggregation_strategy="none", ignore_labels=[]))
    for entity in found:
        assert set(entity) == {"entity_group", "score", "word", "start", "end"}
        assert entity["word"] == text[entity["start"] : entity["end"]]
        assert entity["start"] in {0, 4, 12, 16, 18, 22} and entity["end"] in {3, 11, 16, 17, 22, 23}


def test_bpe_with_leading_space_offsets_start_at_the_word(ner_roberta):
    from tokenizers.processors import RobertaProcessing

    ner = clearpipe.load(ner_roberta, dtype="float32", device="cpu")
    tok = ner.tokenizer
    # as some RoBERTa tokenizers are saved: offsets that keep the word's leading space
    tok.backend_tokenizer.post_processor = RobertaProcessing(
        (tok.sep_token, tok.sep_token_id), (tok.cls_token, tok.cls_token_id), trim_offsets=False
    )
    text = "the film was great"
    raw = ner.tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    assert any(text[start] == " " for start, end in raw if end > start), "the fixture should keep spaces"
    for strategy in ("none", "simple", "word"):
        for entity in ner(text, aggregation_strategy=strategy, ignore_labels=[]):
            assert not text[entity["start"]].isspace()


def test_pre_split_offsets_index_the_words_joined_by_spaces(ner):
    words = ["the", "company", "cafe"]
    found = ner(words, is_split_into_words=True, ignore_labels=[])
    joined = " ".join(words)
    assert [joined[e["start"] : e["end"]] for e in found] == [e["word"] for e in found]


def test_predict_word_tags_reads_each_words_first_token(ner):
    words = [["the", "worldly", "company"], ["naive", "\x00", "actors"], []]
    tags = ner.predict_word_tags(words)
    assert [len(t) for t in tags] == [3, 3, 0]
    tokens = ner(words[0], is_split_into_words=True, aggregation_strategy="none", ignore_labels=[])
    firsts = {e["start"]: e["entity"] for e in reversed(tokens)}
    assert tags[0] == [firsts[0], firsts[4], firsts[12]]
    assert tags[1][1] == "O"  # a word with no tokens
    assert all(tag in ner.labels for row in tags for tag in row)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ner: ner("text", aggregation_strategy="best"), "unknown aggregation_strategy 'best'"),
        (lambda ner: ner("text", is_split_into_words=True), "is_split_into_words=True takes a list of words"),
        (lambda ner: ner(["ok", 3]), "input 1: expected a text"),
        (lambda ner: ner([["a"], ["b", 2]], is_split_into_words=True), "input 1, word 1"),
        (lambda ner: ner("text", ignore_labels="O"), "ignore_labels must be a list"),
        (lambda ner: ner(5), "inputs must be a text or a list of texts"),
    ],
)
def test_bad_input_is_one_clear_line(ner, call, message):
    with pytest.raises(InputError, match=message) as info:
        call(ner)
    assert "\n" not in str(info.value)


def test_a_build_without_the_embedded_ner_model_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(loading.EMBEDDED, "ner", tmp_path)
    with pytest.raises(ClearpipeError, match="ships no embedded NER model"):
        clearpipe.pipeline("ner")


def test_options_that_mean_nothing_to_entities_are_refused(ner_bert):
    with pytest.raises(InputError, match="not function_to_apply"):
        clearpipe.pipeline("ner", model=ner_bert, function_to_apply="sigmoid")
    with pytest.raises(InputError, match="function_to_apply and min_score"):
        clearpipe.load(ner_bert, min_score=0.5)
    with pytest.raises(InputError, match="int8"):
        clearpipe.load(ner_bert, dtype="int8")
    with pytest.raises(InputError, match="aggregation_strategy and ignore_labels are for the ner task"):
        clearpipe.pipeline("sentiment-analysis", aggregation_strategy="simple")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40))
def test_odd_texts_give_valid_spans(ner, text):
    for strategy in ("none", "simple", "word"):
        for entity in ner(text, aggregation_strategy=strategy, ignore_labels=[]):
            assert 0 <= entity["start"] <= entity["end"] <= len(text)
            assert 0.0 <= entity["score"] <= 1.0


def test_empty_and_whitespace_inputs(ner):
    assert ner("") == []
    assert ner("   \n\t") == []
    assert ner([]) == []
    assert ner([], is_split_into_words=True) == []
