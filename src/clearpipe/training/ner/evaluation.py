"""Score a tagger on labelled sentences: the one path for `clearpipe evaluate` on a named-entity
model and for training's final figures. The tagger is any function from sentences to one IOB2 tag
per word, such as a `TokenClassifier`'s `predict_word_tags` over the sentences' words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from clearpipe.entities.aggregation import softmax
from clearpipe.entities.tagger import word_tags
from clearpipe.training.metrics import expected_calibration_error
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


def evaluate_model(
    model, sentences: Sequence[Sentence], n_worst: int = 10, logits: Sequence[np.ndarray] | None = None
) -> NerEvaluation:
    """`evaluate_tagger` for a loaded token classifier (torch, export or lite), from one pass of
    its word logits (or `logits`, that pass done already): the tags, and in `scores` how far
    their scores can be trusted.

    >>> evaluate_model(clearpipe.load("ner"), data.test).scores["ece"]  # doctest: +SKIP
    0.012
    """
    sentences = list(sentences)
    if logits is None:
        logits = model.predict_word_logits([list(s.words) for s in sentences])
    tags = word_tags(logits, model.labels)
    result = evaluate_tagger(lambda _: tags, sentences, n_worst)
    return dataclasses.replace(result, scores=word_scores(model, logits, sentences))


def labelled_words(
    labels: Sequence[str], logits: Sequence[np.ndarray], sentences: Sequence[Sentence]
) -> tuple[np.ndarray, np.ndarray]:
    """The logits (words, labels) of every word with tokens, and its gold tag's id among
    `labels` (-1 for a tag the model does not have): what word scores are judged and
    calibrated against.

    >>> labelled_words(["O", "B-PER"], [np.array([[0.0, 1.0], [np.nan, np.nan]])], sentences)  # doctest: +SKIP
    (array([[0., 1.]], dtype=float32), array([1]))
    """
    ids = {tag: i for i, tag in enumerate(labels)}
    flat = np.concatenate(logits).astype(np.float32) if logits else np.zeros((0, len(labels)), np.float32)
    gold = np.array([ids.get(tag, -1) for s in sentences for tag in s.tags], dtype=np.int64)
    kept = ~np.isnan(flat).any(axis=1)
    return flat[kept], gold[kept]


def word_scores(model, logits: Sequence[np.ndarray], sentences: Sequence[Sentence]) -> dict | None:
    """ECE and log loss of each word's tag distribution (its first sub-token's, as the model
    scores it: with its saved temperature) against the gold tag, and the same for the raw
    softmax. Words whose gold tag the model does not have, or with no tokens, are left out.

    >>> word_scores(ner, ner.predict_word_logits(words), data.test)["raw_ece"]  # doctest: +SKIP
    0.021
    """
    flat, gold = labelled_words(model.labels, logits, sentences)
    known = gold >= 0
    flat, gold = flat[known], gold[known]
    if not len(gold):
        return None
    temperature = model.settings.temperature

    def figures(probs: np.ndarray) -> tuple[float, float]:
        right = probs[np.arange(len(gold)), gold]
        ece = expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == gold)
        return ece, round(float(-np.log(np.clip(right, 1e-7, 1.0)).mean()), 6)

    raw_ece, raw_loss = figures(softmax(flat))
    ece, loss = figures(model.probabilities(flat))
    return {
        "words": len(gold),
        "temperature": None if temperature is None else temperature.value,
        "ece": ece,
        "log_loss": loss,
        "raw_ece": raw_ece,
        "raw_log_loss": raw_loss,
    }


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
