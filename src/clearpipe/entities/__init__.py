"""Named entities (token classification): `TokenClassifier` and `load_token_classifier`.

`windows` is stage 1 (whole inputs in overlapping windows; its torch-free half is `spans`), the
engine's `loop.run_tokens` stage 2, `aggregation` stage 3 (tokens -> words -> entities,
transformers' strategies and contract); `tagger` holds stages 2-3 and the call contract, torch-free,
which `clearpipe.lite` shares. The names below load on first use, so that lite can import the
torch-free modules without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "DEFAULT_STRATEGY": "clearpipe.entities.aggregation",
    "STRATEGIES": "clearpipe.entities.aggregation",
    "Entity": "clearpipe.entities.aggregation",
    "TokenScores": "clearpipe.entities.tagger",
    "TokenSettings": "clearpipe.entities.tagger",
    "TokenClassifier": "clearpipe.entities.classifier",
    "load_token_classifier": "clearpipe.entities.classifier",
}

__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Entity",
    "TokenClassifier",
    "TokenScores",
    "TokenSettings",
    "load_token_classifier",
]

if TYPE_CHECKING:
    from clearpipe.entities.aggregation import DEFAULT_STRATEGY, STRATEGIES, Entity
    from clearpipe.entities.classifier import TokenClassifier, load_token_classifier
    from clearpipe.entities.tagger import TokenScores, TokenSettings


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'clearpipe.entities' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
