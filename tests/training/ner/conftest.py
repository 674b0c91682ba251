"""A tiny word-level base and synthetic named-entity files (made-up names and places) that it
learns in a few seconds, shared by the training, CLI and recipe tests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tiny_bases import word_base

PEOPLE = ["john", "mary", "peter", "anna", "paul", "susan"]
PLACES = ["paris", "london", "berlin", "madrid", "rome", "tokyo"]
ORGS = ["google", "apple", "microsoft", "amazon"]


def sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    """`n` sentences of three shapes: PER lives in LOC; PER PER works for ORG; ORG opened in LOC."""
    r = random.Random(seed)
    out = []
    for _ in range(n):
        p, q, c, o = r.choice(PEOPLE), r.choice(PEOPLE), r.choice(PLACES), r.choice(ORGS)
        out.append(
            [
                [(p, "B-PER"), ("lives", "O"), ("in", "O"), (c, "B-LOC")],
                [(p, "B-PER"), (q, "I-PER"), ("works", "O"), ("for", "O"), (o, "B-ORG")],
                [(o, "B-ORG"), ("opened", "O"), ("in", "O"), (c, "B-LOC"), (".", "O")],
            ][r.randrange(3)]
        )
    return out


def conll(path: Path, n: int, seed: int) -> Path:
    body = "\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences(n, seed))
    path.write_text("-DOCSTART- O\n\n" + body + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ner_base(tmp_path_factory, minilm_dir) -> Path:
    return word_base(tmp_path_factory.mktemp("ner-base"), minilm_dir)


@pytest.fixture(scope="session")
def ner_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ner-data")
    return {
        "train": conll(folder / "train.conll", 200, 1),
        "valid": conll(folder / "valid.conll", 40, 2),
        "test": conll(folder / "test.conll", 40, 3),
    }


@pytest.fixture(scope="session")
def teacher(ner_base, ner_files, tmp_path_factory) -> Path:
    """A tagger trained on `ner_files` to distil from (here it overrides the classification
    teacher of tests/training/conftest.py)."""
    from clearpipe.training.ner.train import train
    from clearpipe.training.train import TrainConfig

    output = tmp_path_factory.mktemp("ner-teacher") / "teacher"
    config = TrainConfig(
        data=str(ner_files["train"]), validation=str(ner_files["valid"]), base=str(ner_base),
        output=str(output), epochs=2, batch_size=16, learning_rate=5e-3, bf16=False, patience=None,
    )  # fmt: skip
    return train(config).output
