"""Named entities against transformers' `TokenClassificationPipeline` on tiny random checkpoints
(BERT WordPiece, RoBERTa byte-level BPE): every aggregation strategy gives the same entities,
offsets and words, scores within 1e-5 (float32)."""

from __future__ import annotations

import warnings

import pytest

import clearpipe
from clearpipe.entities import TokenClassifier

TEXTS = [
    "the film was great, cafe worldly market price!",
    "Stock price of the new company in the world market",
    "a",
    "naive actors loved the resume of that boring scene.",
    "sports team win, tech business lost",
    "héllo wörld emoji ☃ unknownwords",
]
WORDS = [["the", "film", "was", "great"], ["new", "company", "in", "world", "market", "!"]]
STRATEGIES = ["none", "simple", "first", "average", "max"]


@pytest.fixture(scope="module", params=["bert", "roberta"])
def pair(request, ner_bert, ner_roberta):
    from transformers import pipeline

    folder = ner_bert if request.param == "bert" else ner_roberta
    ours = clearpipe.load(folder, dtype="float32", device="cpu")
    theirs = pipeline("token-classification", model=str(folder), device="cpu")
    return ours, theirs


def same(ours: list[dict], theirs: list[dict]) -> None:
    assert [{k: v for k, v in e.items() if k != "score"} for e in ours] == [
        {k: v for k, v in e.items() if k != "score"} for e in theirs
    ]
    for a, b in zip(ours, theirs, strict=True):
        assert abs(a["score"] - float(b["score"])) < 1e-5
        assert isinstance(a["score"], float)


def test_load_gives_a_token_classifier(pair):
    assert isinstance(pair[0], TokenClassifier)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_texts_match_transformers(pair, strategy):
    ours, theirs = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' "fallback heuristic" warning for BPE
        expected = theirs(TEXTS, aggregation_strategy=strategy)
    found = ours(TEXTS, aggregation_strategy=strategy)
    assert any(found), "the tiny model should find entities"
    for a, b in zip(found, expected, strict=True):
        same(a, b)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_single_text_and_ignore_labels(pair, strategy):
    ours, theirs = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = theirs(TEXTS[0], aggregation_strategy=strategy, ignore_labels=[])
    same(ours(TEXTS[0], aggregation_strategy=strategy, ignore_labels=[]), expected)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pre_split_words_match_transformers(ner_bert, strategy):
    from transformers import pipeline

    ours = clearpipe.load(ner_bert, dtype="float32", device="cpu")
    theirs = pipeline("token-classification", model=str(ner_bert), device="cpu")
    expected = theirs(WORDS, aggregation_strategy=strategy, is_split_into_words=True)
    found = ours(WORDS, aggregation_strategy=strategy, is_split_into_words=True)
    for a, b in zip(found, expected, strict=True):
        same(a, b)
    same(ours(WORDS[0], aggregation_strategy=strategy, is_split_into_words=True), expected[0])


def test_pipeline_tasks(ner_bert):
    for task in ("ner", "token-classification"):
        ner = clearpipe.pipeline(task, model=ner_bert, dtype="float32", aggregation_strategy="simple")
        assert isinstance(ner, TokenClassifier)
        assert ner.settings.aggregation_strategy == "simple"
