"""`Tagger`: what every token classifier does past its tokenizer, torch-free.

Stage 2 is the engine's loop (`engine.loop.run_tokens`) over the classifier's runner, windows
merged back (`spans.merge`); stage 3 is `aggregation`; on top sit the call contract (transformers'
`TokenClassificationPipeline`'s) and CoNLL word tags. `entities.TokenClassifier` (a checkpoint, or
an export opened by `clearpipe.load`) and `clearpipe.lite`'s token classifier subclass it and
supply stage 1 (`tokenize`: inputs -> `spans.TokenWindows`) and a runner, so both give the same
entities from the same logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from clearpipe.engine import loop
from clearpipe.entities import aggregation, spans
from clearpipe.entities.aggregation import Aggregated, Aggregation, Entity
from clearpipe.entities.spans import Spans, TokenWindows
from clearpipe.errors import InputError
from clearpipe.postprocess import Activation, Temperature

EntityDict = dict[str, object]
TASK = "token-classification"
"""What `Tagger.task` says: the front ends ask it rather than a class (lite's is another class)."""


@dataclass(frozen=True)
class TokenSettings:
    """Resolved per-classifier settings: windows of `max_length` tokens overlapping by `stride`,
    the engine's budget, and the call defaults of stage 3."""

    max_length: int
    stride: int
    labels: tuple[str, ...]
    use_token_type_ids: bool
    dtype: str = "float32"
    batch_size: int | None = None
    max_tokens: int | None = None
    aggregation_strategy: str = aggregation.DEFAULT_STRATEGY
    ignore_labels: tuple[str, ...] = ("O",)
    # The saved calibration temperature (training fits one on validation words), or None.
    temperature: Temperature | None = None
    # What the server's /info reads of every classifier: softmax per token, long texts always in
    # windows, no thresholds or min_score.
    activation: ClassVar[Activation] = Activation.SOFTMAX
    long_text_modes: ClassVar[tuple[str, ...]] = ("chunk",)
    thresholds: ClassVar[None] = None
    min_score: ClassVar[None] = None


@dataclass(frozen=True)
class TokenScores:
    """Stages 1-2 for many inputs: each input's tokens and its per-token logits (tokens, labels)."""

    spans: list[Spans]
    logits: list[np.ndarray]


class Tagger:
    """A token classifier past stage 1: subclasses set `settings`, `aggregation`, `runner` and
    `source`, and define `tokenize`.

    >>> ner("Ada met Alan.", aggregation_strategy="none")[0]["entity"]  # doctest: +SKIP
    'B-PER'
    """

    task: ClassVar[str] = TASK
    settings: TokenSettings
    aggregation: Aggregation
    runner: loop.Runner
    source: str

    @property
    def labels(self) -> list[str]:
        return list(self.settings.labels)

    @property
    def max_length(self) -> int:
        return self.settings.max_length

    @property
    def budget(self) -> loop.Budget:
        """How the engine cuts rows into batches (see `clearpipe.engine.loop`)."""
        return loop.Budget(self.settings.max_tokens, self.settings.batch_size)

    # Stage 1 (the subclass's tokenizer) ------------------------------------------------------
    def tokenize(self, inputs: Sequence[Any], is_split_into_words: bool = False) -> TokenWindows:
        """Stage 1: checked inputs (texts, or word lists) -> every input's tokens and its windows."""
        raise NotImplementedError

    # Stage 2 ---------------------------------------------------------------------------------
    def logits(self, cut: TokenWindows) -> list[np.ndarray]:
        """Stage 2: per-token logits (tokens, labels) per input, windows merged, via the engine.

        >>> [a.shape for a in ner.logits(ner.tokenize(["Ada met Alan."]))]  # doctest: +SKIP
        [(6, 9)]
        """
        per_row = loop.run_tokens(cut.tokenized, self.runner, self.budget) if len(cut.tokenized) else []
        return spans.merge(per_row, cut)

    def scores(self, inputs: object, is_split_into_words: bool = False) -> TokenScores:
        """Stages 1-2 for raw inputs (a text, texts, or word lists when pre-split)."""
        batch, _ = spans.check_inputs(inputs, is_split_into_words)
        cut = self.tokenize(batch, is_split_into_words)
        return TokenScores(cut.inputs, self.logits(cut))

    # Stage 3 ---------------------------------------------------------------------------------
    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Stage 3's first step: softmax per token, (tokens, labels), of the logits divided by the
        saved temperature when there is one (it never changes a token's best label).

        >>> ner.probabilities(np.zeros((1, 9))).sum()  # doctest: +SKIP
        1.0
        """
        temperature = self.settings.temperature
        if temperature is None or not len(logits):
            return aggregation.softmax(logits)
        return aggregation.softmax(temperature.apply(logits).astype(np.float32))

    def aggregate(
        self,
        spans_: Spans,
        probabilities: np.ndarray,
        aggregation_strategy: str | None = None,
        ignore_labels: Sequence[str] | None = None,
    ) -> Aggregated:
        """Stage 3's second step, each part kept: tokens -> words -> entities (`clearpipe trace`).

        >>> ner.aggregate(spans, ner.probabilities(logits)).members  # doctest: +SKIP
        [(1, 2)]
        """
        strategy = aggregation.check_strategy(aggregation_strategy or self.settings.aggregation_strategy)
        ignored = self.settings.ignore_labels if ignore_labels is None else check_ignore(ignore_labels)
        return aggregation.aggregate(spans_, probabilities, self.aggregation, strategy, ignored)

    def postprocess(
        self,
        spans_: Spans,
        logits: np.ndarray,
        aggregation_strategy: str | None = None,
        ignore_labels: Sequence[str] | None = None,
    ) -> list[Entity]:
        """Stage 3 for one input: logits -> probabilities -> entities (see `aggregation`)."""
        found = self.aggregate(spans_, self.probabilities(logits), aggregation_strategy, ignore_labels)
        return found.entities

    # All three -------------------------------------------------------------------------------
    def predict(
        self,
        inputs: object,
        aggregation_strategy: str | None = None,
        ignore_labels: Sequence[str] | None = None,
        is_split_into_words: bool = False,
    ) -> list[list[Entity]]:
        """Entities of every input, in input order (a list even for one input).

        >>> ner.predict(["Ada met Alan."])[0][0].label  # doctest: +SKIP
        'PER'
        """
        if aggregation_strategy is not None:
            aggregation.check_strategy(aggregation_strategy)  # before the model runs
        found = self.scores(inputs, is_split_into_words)
        return [
            self.postprocess(one, logits, aggregation_strategy, ignore_labels)
            for one, logits in zip(found.spans, found.logits, strict=True)
        ]

    def __call__(
        self,
        inputs: object,
        aggregation_strategy: str | None = None,
        ignore_labels: Sequence[str] | None = None,
        is_split_into_words: bool = False,
    ) -> list[EntityDict] | list[list[EntityDict]]:
        """transformers' token-classification call: a list of dicts for one input, a list of
        lists for a list. `aggregation_strategy` defaults to the classifier's ("word").

        >>> ner("Ada met Alan.", aggregation_strategy="none")[0]["entity"]  # doctest: +SKIP
        'B-PER'
        """
        _, single = spans.check_inputs(inputs, is_split_into_words)
        found = self.predict(inputs, aggregation_strategy, ignore_labels, is_split_into_words)
        answers = [[entity.to_dict() for entity in one] for one in found]
        return answers[0] if single else answers

    def predict_word_tags(self, words: Sequence[Sequence[str]]) -> list[list[str]]:
        """The predicted tag of every word of pre-split inputs, read from each word's first
        sub-token, as CoNLL evaluation expects; a word with no tokens (e.g. a lone control
        character) is "O".

        >>> ner.predict_word_tags([["Ada", "met", "Alan"]])  # doctest: +SKIP
        [['B-PER', 'O', 'B-PER']]
        """
        return word_tags(self.predict_word_logits(words), self.labels)

    def predict_word_logits(self, words: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Each word's logits (words, labels) for pre-split inputs, read from its first sub-token
        (the token a tagger is trained and scored on); a word with no tokens gets a row of NaN.
        A teacher's word logits are what named-entity distillation learns from.

        >>> ner.predict_word_logits([["Ada", "met", "Alan"]])[0].shape  # doctest: +SKIP
        (3, 9)
        """
        if not isinstance(words, (list, tuple)) or not all(isinstance(one, (list, tuple)) for one in words):
            raise InputError("word tags and logits take a list of word lists, e.g. [['Ada', 'met', 'Alan']]")
        found = self.scores([list(one) for one in words], is_split_into_words=True) if words else None
        if found is None:
            return []
        return [
            _first_token_logits(one, logits, len(sentence))
            for one, logits, sentence in zip(found.spans, found.logits, words, strict=True)
        ]

    def warmup(self) -> None:
        """Run two small batches so that kernel selection and allocation happen before real work."""
        self.predict(["warm up " * 4, "warm up " * 30])


def word_tags(word_logits: Sequence[np.ndarray], labels: Sequence[str]) -> list[list[str]]:
    """Each word's best tag from its logits (`Tagger.predict_word_logits`); "O" for a word with
    no tokens (a row of NaN).

    >>> word_tags([np.array([[0.0, 2.0], [np.nan, np.nan]])], ["O", "B-PER"])
    [['B-PER', 'O']]
    """
    return [["O" if np.isnan(row[0]) else labels[int(row.argmax())] for row in one] for one in word_logits]


def _first_token_logits(spans_: Spans, logits: np.ndarray, count: int) -> np.ndarray:
    out = np.full((count, logits.shape[-1]), np.nan, dtype=np.float32)
    seen: set[int] = set()
    for position, word in enumerate(spans_.words):
        if word is not None and word not in seen:
            seen.add(word)
            out[word] = logits[position]
    return out


def check_ignore(ignore_labels: Sequence[str]) -> tuple[str, ...]:
    """`ignore_labels` as a tuple of names, or an `InputError` naming the bad value.

    >>> check_ignore(["O"])
    ('O',)
    """
    if isinstance(ignore_labels, str) or not all(isinstance(label, str) for label in ignore_labels):
        raise InputError(f"ignore_labels must be a list of label names, got {ignore_labels!r}")
    return tuple(ignore_labels)
