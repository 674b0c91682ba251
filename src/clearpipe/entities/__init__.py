"""Named entities (token classification): `TokenClassifier` and `load_token_classifier`.

`windows` is stage 1 (whole inputs in overlapping windows), the engine's `loop.run_tokens` stage 2,
`aggregation` stage 3 (tokens -> words -> entities, transformers' strategies and contract).
"""

from __future__ import annotations

from clearpipe.entities.aggregation import DEFAULT_STRATEGY, STRATEGIES, Entity
from clearpipe.entities.classifier import TokenClassifier, TokenScores, TokenSettings, load_token_classifier

__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Entity",
    "TokenClassifier",
    "TokenScores",
    "TokenSettings",
    "load_token_classifier",
]
