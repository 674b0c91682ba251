"""clearpipe: turn raw text into trustworthy labels, fast, and see every step on the way.

>>> import clearpipe
>>> clf = clearpipe.load("path/to/checkpoint")  # doctest: +SKIP
>>> clf("I love this movie!")  # doctest: +SKIP
{'label': 'positive', 'score': 0.998}
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# torch and transformers take seconds to import: the public names are loaded on first use so
# that `clearpipe --help`, `--version` and usage errors answer at once.
_LAZY = {
    "Classifier": "clearpipe.classifier",
    "LoadOptions": "clearpipe.classifier",
    "load": "clearpipe.classifier",
    "pipeline": "clearpipe.pipeline",
    "TASKS": "clearpipe.pipeline",
    "ZeroShotClassifier": "clearpipe.zeroshot",
    "Label": "clearpipe.zeroshot",
    "parse_labels": "clearpipe.zeroshot",
    "load_zero_shot": "clearpipe.zeroshot",
    "load_embedder": "clearpipe.zeroshot",
    "BEST": "clearpipe.postprocess",
    "LabelScore": "clearpipe.postprocess",
    "ClearpipeError": "clearpipe.errors",
    "InputError": "clearpipe.errors",
    "CheckpointError": "clearpipe.errors",
}

__all__ = [
    "BEST",
    "TASKS",
    "CheckpointError",
    "Classifier",
    "ClearpipeError",
    "InputError",
    "Label",
    "LabelScore",
    "LoadOptions",
    "ZeroShotClassifier",
    "__version__",
    "load",
    "load_embedder",
    "load_zero_shot",
    "parse_labels",
    "pipeline",
]

if TYPE_CHECKING:
    from clearpipe.classifier import Classifier, LoadOptions, load
    from clearpipe.errors import CheckpointError, ClearpipeError, InputError
    from clearpipe.pipeline import TASKS, pipeline
    from clearpipe.postprocess import BEST, LabelScore
    from clearpipe.zeroshot import Label, ZeroShotClassifier, load_embedder, load_zero_shot, parse_labels


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'clearpipe' has no attribute {name!r}")
    from clearpipe.engine import collector

    with collector.paused():  # the first of these imports torch and transformers
        value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
