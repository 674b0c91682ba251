"""An NLI checkpoint answers as transformers' ZeroShotClassificationPipeline does, batched."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers import pipeline as hf_pipeline

import clearpipe
from clearpipe.zeroshot import NliZeroShotClassifier

TEXTS = ["the team lost the game", "a great new film , really fun", "stock price of the company was bad"]
LABELS = ["sports", "film", "business", "tech"]


@pytest.fixture(scope="module")
def both(tiny_nli):
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_nli)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_nli))
    oracle = hf_pipeline("zero-shot-classification", model=model, tokenizer=tokenizer, device="cpu")
    ours = clearpipe.pipeline("zero-shot-classification", model=tiny_nli, device="cpu", dtype="float32")
    return oracle, ours


def same(ours, theirs):
    assert ours["sequence"] == theirs["sequence"]
    assert ours["labels"] == theirs["labels"]
    np.testing.assert_allclose(ours["scores"], theirs["scores"], atol=1e-5)


@pytest.mark.parametrize("multi_label", [False, True])
def test_scores_and_order_match_transformers(both, multi_label):
    oracle, ours = both
    assert isinstance(ours, NliZeroShotClassifier) and ours.entailment == 2
    for text in TEXTS:
        same(
            ours(text, candidate_labels=LABELS, multi_label=multi_label),
            oracle(text, LABELS, multi_label=multi_label),
        )
    mine = ours(
        TEXTS, candidate_labels=LABELS, hypothesis_template="It is about {}.", multi_label=multi_label
    )
    for got, text in zip(mine, TEXTS, strict=True):
        same(got, oracle(text, LABELS, hypothesis_template="It is about {}.", multi_label=multi_label))


def test_the_scores_vary_by_label_so_the_parity_means_something(both):
    _, ours = both
    scores = ours(TEXTS[0], candidate_labels=LABELS)["scores"]
    assert max(scores) - min(scores) > 0.05


def test_all_pairs_go_through_the_engine_in_one_call(both, monkeypatch):
    _, ours = both
    calls = []
    original = ours.classifier.logits
    monkeypatch.setattr(ours.classifier, "logits", lambda tok: calls.append(len(tok)) or original(tok))
    ours(TEXTS, candidate_labels=LABELS)
    assert calls == [len(TEXTS) * len(LABELS)]


def test_a_label_description_is_the_hypothesis_the_name_the_answer(both):
    oracle, ours = both
    got = ours(TEXTS[0], candidate_labels={"S": "sports", "F": "film"})
    theirs = oracle(TEXTS[0], ["sports", "film"])
    assert [{"sports": "S", "film": "F"}[name] for name in theirs["labels"]] == got["labels"]
    np.testing.assert_allclose(got["scores"], theirs["scores"], atol=1e-5)
