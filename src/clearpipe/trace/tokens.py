"""`TokenTrace`: one text through a token classifier's (NER) stages, and `trace_tokens` to record one.

The stages are the classifier's own (`clearpipe.entities.tagger.Tagger`): `tokenize` (the whole
text, its windows), `logits` (the engine's loop, windows merged), `probabilities` (softmax per
token) and `aggregate` (tokens -> words -> entities, keeping which tokens made each), each timed.
The classifier is typed by shape (`TracedTokens`), so this module sits below it. `to_dict` is the
JSON form: the `task: "token-classification"` variant of `schema.json` (same schema version).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from clearpipe.errors import InputError

TASK = "token-classification"
TOP_LABELS = 3
"""How many labels each token lists, best first."""

NO_ATTRIBUTIONS = (
    "token attributions (Integrated Gradients toward one label) are for sequence classifiers; "
    "a token classifier's trace shows each token's own label scores instead"
)


class TracedTokens(Protocol):
    """What `trace_tokens` needs of a token classifier (`clearpipe.entities.TokenClassifier`):
    its stages, its labels, where it came from and its settings (max_length, stride, dtype,
    aggregation_strategy, ignore_labels)."""

    source: str
    settings: Any

    @property
    def labels(self) -> list[str]: ...

    def tokenize(self, inputs: list[str], is_split_into_words: bool = False) -> Any: ...

    def logits(self, cut: Any) -> list[np.ndarray]: ...

    def probabilities(self, logits: np.ndarray) -> np.ndarray: ...

    def aggregate(self, spans: Any, probabilities: np.ndarray) -> Any: ...


@dataclass(frozen=True)
class TokenRow:
    """One token: where it is in the text (`span`, None for special tokens), its word id, and
    its best labels with their softmax scores (`top`, best first)."""

    index: int
    id: int
    token: str
    special: bool
    span: tuple[int, int] | None
    word: int | None
    top: list[tuple[str, float]]


@dataclass(frozen=True)
class Unit:
    """A token ("none", "simple") or a word (the word strategies) with its label, before grouping."""

    tokens: tuple[int, ...]
    text: str
    start: int
    end: int
    label: str
    score: float


@dataclass(frozen=True)
class Found:
    """One entity as `clf(text)` returns it (`answer`) and the tokens it was grouped from."""

    answer: dict[str, Any]
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class TokenTrace:
    """One text through a token classifier: tokens, windows, per-token labels, words, entities.

    `windows` are the [start, end) token ranges of the text each model window held; `times`
    the milliseconds of each stage (input, tokenizer, model, activation, aggregation).

    >>> t = ner.trace("Ada met Alan.")  # doctest: +SKIP
    >>> [e.answer["word"] for e in t.entities], t.strategy  # doctest: +SKIP
    (['Ada', 'Alan'], 'word')
    """

    model_source: str
    labels: list[str]
    text: str
    tokens: list[TokenRow]
    windows: list[tuple[int, int]]
    max_length: int
    stride: int
    dtype: str
    strategy: str
    ignore_labels: list[str]
    units: list[Unit]
    entities: list[Found]
    times: dict[str, float]

    @property
    def unavailable(self) -> list[dict[str, str]]:
        return [{"what": "attributions", "why": NO_ATTRIBUTIONS}]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`schema.json`, its token-classification variant).

        >>> json.dumps(ner.trace("Ada met Alan.").to_dict())  # doctest: +SKIP
        """
        return {
            "schema": "clearpipe.trace",
            "schema_version": 1,
            "task": TASK,
            "model": self.model_source,
            "labels": list(self.labels),
            "stages": _stages(self),
            "entities": [dict(found.answer) for found in self.entities],
            "attributions": None,
            "unavailable": self.unavailable,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)


def trace_tokens(clf: TracedTokens, text: str) -> TokenTrace:
    """Run one text through the classifier's own stages, recording and timing each.

    >>> trace_tokens(clearpipe.load("ner-model"), "Ada met Alan.").entities[0].answer  # doctest: +SKIP
    {'entity_group': 'PER', 'score': 0.99, 'word': 'Ada', 'start': 0, 'end': 3}
    """
    times: dict[str, float] = {}
    start = time.perf_counter()
    if not isinstance(text, str):
        raise InputError(f"text: trace follows one text, got {type(text).__name__}")
    times["input"] = _ms(start)

    start = time.perf_counter()
    cut = clf.tokenize([text])
    spans = cut.inputs[0]
    times["tokenizer"] = _ms(start)

    start = time.perf_counter()
    logits = clf.logits(cut)[0]
    times["model"] = _ms(start)

    start = time.perf_counter()
    probabilities = clf.probabilities(logits)
    times["activation"] = _ms(start)

    start = time.perf_counter()
    found = clf.aggregate(spans, probabilities)
    times["aggregation"] = _ms(start)

    s = clf.settings
    return TokenTrace(
        model_source=str(clf.source),
        labels=list(clf.labels),
        text=text,
        tokens=[_token(spans, i, probabilities[i], clf.labels) for i in range(len(spans))],
        windows=[_window(spans.special, picked) for picked in cut.positions],
        max_length=int(s.max_length),
        stride=int(s.stride),
        dtype=str(s.dtype),
        strategy=found.strategy,
        ignore_labels=list(s.ignore_labels),
        units=[Unit(u.tokens, u.word, u.start, u.end, u.label, u.score) for u in found.units],
        entities=[Found(e.to_dict(), m) for e, m in zip(found.entities, found.members, strict=True)],
        times=times,
    )


def _token(spans: Any, i: int, scores: np.ndarray, labels: list[str]) -> TokenRow:
    best = np.argsort(-scores, kind="stable")[:TOP_LABELS]
    special = bool(spans.special[i])
    return TokenRow(
        index=i,
        id=int(spans.ids[i]),
        token=str(spans.tokens[i]),
        special=special,
        span=None if special else tuple(int(x) for x in spans.offsets[i]),
        word=spans.words[i],
        top=[(labels[j], float(scores[j])) for j in best],
    )


def _window(special: list[bool], picked: np.ndarray) -> tuple[int, int]:
    """The [start, end) range of text tokens a window held (its special tokens aside)."""
    content = [int(p) for p in picked if not special[p]]
    return (content[0], content[-1] + 1) if content else (0, 0)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


# JSON form -----------------------------------------------------------------------------------


def _stage(
    name: str, took: str, gave: str, shape: list[int], time_ms: float, **details: Any
) -> dict[str, Any]:
    return {"name": name, "input": took, "output": gave, "shape": shape, "time_ms": time_ms, **details}


def _stages(t: TokenTrace) -> list[dict[str, Any]]:
    n, k = len(t.tokens), len(t.labels)
    kind = "words" if t.strategy in ("first", "average", "max", "word") else "tokens"
    return [
        _stage("input", "text", f"{len(t.text)} characters", [len(t.text)], t.times["input"], text=t.text),
        _stage(
            "tokenizer",
            "text",
            f"{n} tokens in {len(t.windows)} window(s) of at most {t.max_length}",
            [n],
            t.times["tokenizer"],
            tokens=[_token_dict(row) for row in t.tokens],
            windows=[{"start": a, "end": b} for a, b in t.windows],
            max_length=t.max_length,
            stride=t.stride,
        ),
        _stage(
            "model",
            f"{len(t.windows)} window(s) of input_ids",
            f"logits ({n}, {k}), windows merged",
            [n, k],
            t.times["model"],
            dtype=t.dtype,
        ),
        _stage(
            "activation",
            f"logits ({n}, {k})",
            f"softmax scores ({n}, {k}), the top {TOP_LABELS} per token",
            [n, k],
            t.times["activation"],
            function="softmax",
            tokens=[
                {"index": row.index, "top": [{"label": label, "score": p} for label, p in row.top]}
                for row in t.tokens
            ],
        ),
        _stage(
            "aggregation",
            f"softmax scores ({n}, {k})",
            f"{len(t.units)} {kind} -> {len(t.entities)} entities",
            [len(t.entities)],
            t.times["aggregation"],
            strategy=t.strategy,
            ignore_labels=list(t.ignore_labels),
            units=[
                {
                    "tokens": list(u.tokens),
                    "text": u.text,
                    "start": u.start,
                    "end": u.end,
                    "label": u.label,
                    "score": u.score,
                }
                for u in t.units
            ],
            entities=[{**found.answer, "tokens": list(found.tokens)} for found in t.entities],
        ),
    ]


def _token_dict(row: TokenRow) -> dict[str, Any]:
    return {
        "index": row.index,
        "id": row.id,
        "token": row.token,
        "special": row.special,
        "span": None if row.span is None else list(row.span),
        "word": row.word,
    }
