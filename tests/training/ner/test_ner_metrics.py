"""Entity-level scores: a small set whose conlleval counts are worked out by hand below, and
seqeval's default mode as an oracle on random tag sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearpipe.training.ner.metrics import MISSED, SPURIOUS, score_entities

WORDS = [
    ["John", "Smith", "lives", "in", "New", "York"],
    ["Apple", "buys", "Beats"],
    ["the", "Olympics", "in", "Paris"],
    ["nothing", "here"],
]
GOLD = [
    ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"],
    ["B-ORG", "O", "B-ORG"],
    ["O", "B-MISC", "O", "B-LOC"],
    ["O", "O"],
]
PREDICTED = [
    ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],  # PER right; LOC "New" only: a boundary mistake
    ["B-ORG", "O", "B-MISC"],  # ORG right; "Beats" with the wrong type
    ["O", "O", "O", "I-LOC"],  # MISC missed; I-LOC after O starts an entity, so "Paris" is right
    ["B-PER", "O"],  # spurious PER
]


def test_hand_counted_conlleval_figures():
    ev = score_entities(GOLD, PREDICTED, WORDS, lines=[1, 9, 14, 20], n_worst=3)
    # gold: PER 1, LOC 2, ORG 2, MISC 1; predicted: PER 2, LOC 2, ORG 1, MISC 1; right: PER, LOC, ORG 1 each
    assert (ev.overall.gold, ev.overall.predicted, ev.overall.correct) == (6, 6, 3)
    assert (ev.overall.precision, ev.overall.recall, ev.overall.f1) == (0.5, 0.5, 0.5)
    expected = {  # (precision, recall, F1)
        "PER": (1 / 2, 1 / 1, 2 / 3),
        "LOC": (1 / 2, 1 / 2, 1 / 2),
        "ORG": (1 / 1, 1 / 2, 2 / 3),
        "MISC": (0.0, 0.0, 0.0),
    }
    for kind, figures in expected.items():
        s = ev.per_type[kind]
        assert (s.precision, s.recall, s.f1) == pytest.approx(figures), kind
    # 15 tokens; wrong: York, Beats, Olympics, Paris (B- vs I-), nothing.
    assert ev.tokens == 15
    assert ev.token_accuracy == pytest.approx(10 / 15)
    assert ev.mistakes == {"type": 1, "boundary": 1, "missed": 1, "spurious": 1}
    assert ev.confusion == {
        "LOC": {MISSED: 1, "LOC": 1},
        "MISC": {MISSED: 1},
        "ORG": {"MISC": 1, "ORG": 1},
        "PER": {"PER": 1},
        SPURIOUS: {"LOC": 1, "PER": 1},
    }
    # Two wrong entities in each of the first two sentences, one in the others: ties by order.
    assert [(w["line"], w["wrong"]) for w in ev.worst] == [(1, 2), (9, 2), (14, 1)]
    assert ev.worst[0]["gold"] == ["PER: John Smith", "LOC: New York"]
    assert ev.worst[0]["predicted"] == ["PER: John Smith", "LOC: New"]


def test_seqeval_agrees_on_the_hand_counted_set():
    seqeval = pytest.importorskip("seqeval.metrics")
    ev = score_entities(GOLD, PREDICTED)
    assert ev.overall.f1 == pytest.approx(seqeval.f1_score(GOLD, PREDICTED))
    assert ev.token_accuracy == pytest.approx(seqeval.accuracy_score(GOLD, PREDICTED))


TAGS = st.sampled_from(["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"])
SENTENCE_PAIRS = st.lists(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(st.lists(TAGS, min_size=n, max_size=n), st.lists(TAGS, min_size=n, max_size=n))
    ),
    min_size=1,
    max_size=8,
)


@given(SENTENCE_PAIRS)
@settings(max_examples=150, deadline=None)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # seqeval's averages over types with no entity
def test_per_type_and_micro_scores_match_seqeval(pairs):
    metrics = pytest.importorskip("seqeval.metrics")
    gold = [g for g, _ in pairs]
    predicted = [p for _, p in pairs]
    ev = score_entities(gold, predicted)
    report = metrics.classification_report(gold, predicted, output_dict=True, zero_division=0)
    for kind, s in ev.per_type.items():
        assert s.gold == report[kind]["support"]
        assert (s.precision, s.recall, s.f1) == pytest.approx(
            (report[kind]["precision"], report[kind]["recall"], report[kind]["f1-score"])
        )
    assert ev.overall.f1 == pytest.approx(metrics.f1_score(gold, predicted, zero_division=0))
    assert ev.overall.precision == pytest.approx(metrics.precision_score(gold, predicted, zero_division=0))
    assert ev.overall.recall == pytest.approx(metrics.recall_score(gold, predicted, zero_division=0))
