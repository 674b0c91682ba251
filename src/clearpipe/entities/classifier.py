"""`TokenClassifier`: a `*ForTokenClassification` checkpoint with its three stages, and
`load_token_classifier` to make one (`clearpipe.load` and `clearpipe.pipeline("ner")` call it).

Stage 1 is `windows` (whole inputs, cut into overlapping windows, never truncated), stage 2 the
engine's loop over a `engine.run.TokenRunner` (token-budget batches, padded, every token computed),
stage 3 `aggregation` (softmax per token, tokens -> words -> entities).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from clearpipe.engine import allocator, attention, batching, loop, precision, prepacked
from clearpipe.engine.run import TokenRunner
from clearpipe.entities import aggregation, windows
from clearpipe.entities.aggregation import Aggregation, Entity
from clearpipe.entities.windows import Spans, TokenWindows
from clearpipe.errors import InputError
from clearpipe.loading import (
    Checkpoint,
    load_checkpoint,
    model_max_length,
    resolve_device,
    uses_token_type_ids,
)
from clearpipe.postprocess import Activation

EntityDict = dict[str, object]


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
    # What the server's /info reads of every classifier: softmax per token, long texts always in
    # windows, no temperature, thresholds or min_score.
    activation: ClassVar[Activation] = Activation.SOFTMAX
    long_text_modes: ClassVar[tuple[str, ...]] = ("chunk",)
    temperature: ClassVar[None] = None
    thresholds: ClassVar[None] = None
    min_score: ClassVar[None] = None


@dataclass(frozen=True)
class TokenScores:
    """Stages 1-2 for many inputs: each input's tokens and its per-token logits (tokens, labels)."""

    spans: list[Spans]
    logits: list[np.ndarray]


class TokenClassifier:
    """A token classifier (named entities): call it on a text or a list of texts.

    >>> ner = clearpipe.load("path/to/ner-model")  # doctest: +SKIP
    >>> ner("Ada Lovelace was born in London.")  # doctest: +SKIP
    [{'entity_group': 'PER', 'score': 0.99, 'word': 'Ada Lovelace', 'start': 0, 'end': 12}, ...]
    """

    def __init__(self, checkpoint: Checkpoint, settings: TokenSettings, runner: loop.Runner | None = None):
        self.model = checkpoint.model
        self.tokenizer = checkpoint.tokenizer
        self.source = checkpoint.source
        self.settings = settings
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.runner: loop.Runner = runner or TokenRunner(
            self.model, self.model.device, pad_id, self.tokenizer.padding_side
        )
        prefix = getattr(getattr(self.tokenizer, "_tokenizer", None), "model", None)
        self.aggregation = Aggregation(
            labels=settings.labels,
            word_aware=bool(getattr(prefix, "continuing_subword_prefix", None)),
            unk_id=self.tokenizer.unk_token_id,
            decode=self.tokenizer.convert_tokens_to_string,
        )

    @property
    def labels(self) -> list[str]:
        return list(self.settings.labels)

    @property
    def max_length(self) -> int:
        return self.settings.max_length

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def budget(self) -> loop.Budget:
        """How the engine cuts rows into batches (see `clearpipe.engine.loop`)."""
        return loop.Budget(self.settings.max_tokens, self.settings.batch_size)

    # Stage 1 ---------------------------------------------------------------------------------
    def tokenize(
        self, inputs: Sequence[str] | Sequence[Sequence[str]], is_split_into_words: bool = False
    ) -> TokenWindows:
        """Stage 1: checked inputs (texts, or word lists) -> every input's tokens and its windows."""
        s = self.settings
        return windows.windows(
            self.tokenizer, inputs, is_split_into_words, s.use_token_type_ids, s.max_length, s.stride
        )

    # Stage 2 ---------------------------------------------------------------------------------
    def logits(self, cut: TokenWindows) -> list[np.ndarray]:
        """Stage 2: per-token logits (tokens, labels) per input, windows merged, via the engine.

        >>> [a.shape for a in ner.logits(ner.tokenize(["Ada met Alan."]))]  # doctest: +SKIP
        [(6, 9)]
        """
        per_row = loop.run_tokens(cut.tokenized, self.runner, self.budget) if len(cut.tokenized) else []
        return windows.merge(per_row, cut)

    def scores(self, inputs: object, is_split_into_words: bool = False) -> TokenScores:
        """Stages 1-2 for raw inputs (a text, texts, or word lists when pre-split)."""
        batch, _ = windows.check_inputs(inputs, is_split_into_words)
        cut = self.tokenize(batch, is_split_into_words)
        return TokenScores(cut.inputs, self.logits(cut))

    # Stage 3 ---------------------------------------------------------------------------------
    def postprocess(
        self,
        spans: Spans,
        logits: np.ndarray,
        aggregation_strategy: str | None = None,
        ignore_labels: Sequence[str] | None = None,
    ) -> list[Entity]:
        """Stage 3 for one input: logits -> probabilities -> entities (see `aggregation`)."""
        strategy = aggregation.check_strategy(aggregation_strategy or self.settings.aggregation_strategy)
        ignored = self.settings.ignore_labels if ignore_labels is None else _check_ignore(ignore_labels)
        return aggregation.entities(spans, aggregation.softmax(logits), self.aggregation, strategy, ignored)

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
        _, single = windows.check_inputs(inputs, is_split_into_words)
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
        if not isinstance(words, (list, tuple)) or not all(isinstance(one, (list, tuple)) for one in words):
            raise InputError("predict_word_tags takes a list of word lists, e.g. [['Ada', 'met', 'Alan']]")
        found = self.scores([list(one) for one in words], is_split_into_words=True) if words else None
        if found is None:
            return []
        return [
            _first_token_tags(one, logits, len(sentence), self.labels)
            for one, logits, sentence in zip(found.spans, found.logits, words, strict=True)
        ]

    def trace(self, text: str, pair: str | None = None, attributions: bool = True) -> None:
        """Not yet for token classifiers: `clearpipe trace` and the server's /explain say so."""
        raise InputError("clearpipe trace does not support token-classification (NER) models yet")

    def warmup(self) -> None:
        """Run two small batches so that kernel selection and allocation happen before real work."""
        self.predict(["warm up " * 4, "warm up " * 30])

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"TokenClassifier(source={self.source!r}, labels={list(s.labels)}, max_length={s.max_length}, "
            f"stride={s.stride}, dtype={s.dtype}, aggregation_strategy={s.aggregation_strategy!r})"
        )


def _first_token_tags(spans: Spans, logits: np.ndarray, count: int, labels: Sequence[str]) -> list[str]:
    tags = ["O"] * count
    seen: set[int] = set()
    for position, word in enumerate(spans.words):
        if word is not None and word not in seen:
            seen.add(word)
            tags[word] = labels[int(logits[position].argmax())]
    return tags


def _check_ignore(ignore_labels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(ignore_labels, str) or not all(isinstance(label, str) for label in ignore_labels):
        raise InputError(f"ignore_labels must be a list of label names, got {ignore_labels!r}")
    return tuple(ignore_labels)


def load_token_classifier(
    source: str | os.PathLike[str],
    *,
    max_length: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    stride: int | None = None,
    max_tokens: int | None = None,
    threads: int | None = None,
    trust_remote_code: bool = False,
    labels: Sequence[str] | None = None,
    aggregation_strategy: str = aggregation.DEFAULT_STRATEGY,
    ignore_labels: Sequence[str] = ("O",),
) -> TokenClassifier:
    """Load a token-classification checkpoint folder (or hub id, resolved by
    `clearpipe.loading.resolve_source`) as a `TokenClassifier`.

    Texts longer than `max_length` tokens (default: the model's limit) run in windows overlapping
    by `stride` tokens (default a quarter window). `dtype` is "auto", "float32", "bfloat16" or
    "float16"; int8 is refused (its close-call referee judges one label per row).

    >>> ner = load_token_classifier("path/to/ner-model", dtype="float32")  # doctest: +SKIP
    """
    strategy = aggregation.check_strategy(aggregation_strategy)
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    torch_device = resolve_device(device)
    resolved = precision.resolve_dtype(dtype, torch_device)
    if resolved == "int8":
        raise InputError(
            "dtype int8 is not available for token classification; use auto, float32 or bfloat16"
        )
    if torch_device.type == "cpu":
        allocator.keep_freed_memory()
    checkpoint = load_checkpoint(
        str(source), torch_device, precision.torch_dtype(resolved), trust_remote_code
    )
    attention.use_cpu_attention(checkpoint.model)  # bf16/fp16 attention on the CPU
    prepacked.prepack_model(checkpoint.model)
    length = _max_length(max_length, checkpoint)
    settings = TokenSettings(
        max_length=length,
        stride=length // 4 if stride is None else _check_stride(stride),
        labels=tuple(_labels(checkpoint, labels)),
        use_token_type_ids=uses_token_type_ids(checkpoint.model, checkpoint.tokenizer),
        dtype=resolved,
        batch_size=batch_size,
        max_tokens=batching.default_max_tokens(torch_device) if max_tokens is None else max_tokens,
        aggregation_strategy=strategy,
        ignore_labels=_check_ignore(ignore_labels),
    )
    return TokenClassifier(checkpoint, settings)


def _check_stride(stride: int) -> int:
    if stride < 0:
        raise InputError(f"stride must be 0 or more tokens, got {stride}")
    return stride


def _max_length(max_length: int | None, checkpoint: Checkpoint) -> int:
    limit = model_max_length(checkpoint.model.config, checkpoint.tokenizer)
    if max_length is None:
        return limit
    if max_length < 4 or max_length > limit:
        raise InputError(
            f"max_length must be between 4 and the model's limit of {limit} tokens, got {max_length}"
        )
    return max_length


def _labels(checkpoint: Checkpoint, labels: Sequence[str] | None) -> list[str]:
    config = checkpoint.model.config
    if labels is None:
        return [str(config.id2label[i]) for i in range(config.num_labels)]
    if len(labels) != config.num_labels:
        raise InputError(f"labels has {len(labels)} names but the model has {config.num_labels} outputs")
    return [str(label) for label in labels]
