from __future__ import annotations

from pathlib import Path

import pytest

import checkpoints

NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}


@pytest.fixture(scope="session")
def tiny_nli(tiny, tmp_path_factory) -> Path:
    """A tiny random BERT NLI checkpoint, weights large enough that its logits differ by pair."""
    source = tiny("bert", 3, id2label=NLI_LABELS)
    return checkpoints.make_sensitive(source, tmp_path_factory.mktemp("tiny-nli"), seed=3)


@pytest.fixture(scope="session")
def tiny_encoder(tiny, tmp_path_factory) -> Path:
    """A tiny random BERT used as a sentence encoder (its head is ignored), sensitive to words."""
    return checkpoints.make_sensitive(tiny("bert", 2), tmp_path_factory.mktemp("tiny-encoder"), seed=5)
