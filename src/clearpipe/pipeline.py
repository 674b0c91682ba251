"""`clearpipe.pipeline`: the drop-in for the `transformers.pipeline` call in the tutorials."""

from __future__ import annotations

import os
from typing import Unpack

from clearpipe.classifier import Classifier, LoadOptions, load
from clearpipe.errors import InputError

TASKS = ("sentiment-analysis", "text-classification")


def pipeline(
    task: str = "sentiment-analysis",
    model: str | os.PathLike[str] | None = None,
    **options: Unpack[LoadOptions],
) -> Classifier:
    """Drop-in for `transformers.pipeline("sentiment-analysis")`, returning a `Classifier`.

    With `model=None` it uses clearpipe's embedded default sentiment model.

    >>> classifier = clearpipe.pipeline("sentiment-analysis")  # doctest: +SKIP
    >>> classifier("We are very happy to show you the clearpipe library.")  # doctest: +SKIP
    {'label': 'positive', 'score': 0.99}
    """
    if task not in TASKS:
        raise InputError(f"unsupported task {task!r}: clearpipe does {' and '.join(TASKS)}")
    return load(model, **options)
