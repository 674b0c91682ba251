"""clearpipe: turn raw text into trustworthy labels, fast, and see every step on the way.

>>> import clearpipe
>>> clf = clearpipe.load("path/to/checkpoint")  # doctest: +SKIP
>>> clf("I love this movie!")  # doctest: +SKIP
{'label': 'positive', 'score': 0.998}
"""

from __future__ import annotations

import os
from typing import Unpack

from clearpipe.classifier import Classifier, LoadOptions, load
from clearpipe.errors import CheckpointError, ClearpipeError, InputError
from clearpipe.postprocess import BEST, LabelScore

__version__ = "0.1.0"

TASKS = ("sentiment-analysis", "text-classification")

__all__ = [
    "BEST",
    "CheckpointError",
    "Classifier",
    "ClearpipeError",
    "InputError",
    "LabelScore",
    "__version__",
    "load",
    "pipeline",
]


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
