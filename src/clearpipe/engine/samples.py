"""Built-in texts a converted model is checked on when the user gives none.

A few hundred sentiment phrases (SST-2 dev) and news snippets (AG News), in `sample_texts/`,
picked by the model's label names. The int8 referee calibrates its margin on them at load
(`recheck`), and `clearpipe export` compares an export with the float32 original on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SAMPLES = Path(__file__).parent / "sample_texts"
_SENTIMENT_WORDS = {"positive", "negative", "neutral", "pos", "neg", "pos.", "neg."}


def builtin_sample(labels: Sequence[str]) -> tuple[str, list[str]]:
    """The built-in validation sample that suits a model with these labels: (name, texts).

    >>> builtin_sample(["negative", "positive"])[0]
    'built-in sentiment sample'
    """
    kind = "sentiment" if {label.lower() for label in labels} & _SENTIMENT_WORDS else "news"
    texts = (SAMPLES / f"{kind}.txt").read_text(encoding="utf-8").splitlines()
    return f"built-in {kind} sample", [t for t in texts if t.strip()]
