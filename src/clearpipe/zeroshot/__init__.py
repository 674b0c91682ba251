"""Zero-shot classification and sentence embeddings: labels given at call time, no training.

`embedder` turns texts into normalized mean-pooled embeddings through the engine (stage 2's
output); `labels` reads candidate labels and their descriptions; `scoring` turns cosine
similarities (or an NLI model's entailment logits) into probabilities (stage 3); `classifier`
composes them into `ZeroShotClassifier`, which `clearpipe.pipeline("zero-shot-classification")`
returns; `fixed` holds one with a label set, in the shape bulk prediction drives.
"""

from clearpipe.zeroshot.classifier import (
    NliZeroShotClassifier,
    ZeroShotClassifier,
    ZeroShotModel,
    load_zero_shot,
)
from clearpipe.zeroshot.embedder import Embedder, load_embedder
from clearpipe.zeroshot.fixed import FixedLabels
from clearpipe.zeroshot.labels import Label, parse_labels
from clearpipe.zeroshot.scoring import DEFAULT_TEMPLATE, Similarity, ZeroShotOutput, ZeroShotPredictions

__all__ = [
    "DEFAULT_TEMPLATE",
    "Embedder",
    "FixedLabels",
    "Label",
    "NliZeroShotClassifier",
    "Similarity",
    "ZeroShotClassifier",
    "ZeroShotModel",
    "ZeroShotOutput",
    "ZeroShotPredictions",
    "load_embedder",
    "load_zero_shot",
    "parse_labels",
]
