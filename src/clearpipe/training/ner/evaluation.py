"""Score a tagger on labelled sentences: the one path for `clearpipe evaluate` on a named-entity
model and for training's final figures. The tagger is any function from sentences to one IOB2 tag
per word, such as a `TokenClassifier`'s `predict_word_tags` over the sentences' words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from clearpipe.training.ner.metrics import NerEvaluation, score_entities
from clearpipe.training.ner.read import Sentence
from clearpipe.training.ner.tags import OUTSIDE

Tagger = Callable[[list[Sentence]], list[list[str]]]


def evaluate_tagger(tagger: Tagger, sentences: Sequence[Sentence], n_worst: int = 10) -> NerEvaluation:
    """Tag every sentence and score the tags against the gold ones (see `metrics.score_entities`).

    >>> evaluate_tagger(lambda ss: [["O"] * len(s.words) for s in ss], data.test).f1  # doctest: +SKIP
    0.0
    """
    sentences = list(sentences)
    predicted = [_checked(tags, s) for tags, s in zip(tagger(sentences), sentences, strict=True)]
    return score_entities(
        [list(s.tags) for s in sentences],
        predicted,
        words=[list(s.words) for s in sentences],
        lines=[s.line for s in sentences],
        n_worst=n_worst,
    )


def words_tagger(predict_word_tags: Callable[[list[list[str]]], list[list[str]]]) -> Tagger:
    """A tagger from a function of word lists, such as `TokenClassifier.predict_word_tags`.

    >>> words_tagger(clearpipe.load("ner").predict_word_tags)  # doctest: +SKIP
    """

    def tag(sentences: list[Sentence]) -> list[list[str]]:
        return predict_word_tags([list(s.words) for s in sentences])

    return tag


def _checked(tags: list[str], sentence: Sentence) -> list[str]:
    # A tag per word is the tagger's promise; a model's own tag names may be BIOES or plain types.
    if len(tags) != len(sentence.words):
        raise ValueError(f"line {sentence.line}: {len(tags)} tags for {len(sentence.words)} words")
    return [t if t == OUTSIDE or t[:2] in ("B-", "I-") else _as_iob2(t) for t in tags]


def _as_iob2(tag: str) -> str:
    prefix, dash, kind = tag.partition("-")
    if dash and prefix == "S":
        return f"B-{kind}"
    if dash and prefix == "E":
        return f"I-{kind}"
    return f"I-{tag}"  # a bare type: IO tagging, each run of one type an entity
