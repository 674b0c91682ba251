"""A named-entity run's data: training, validation (given, or 10% of the training sentences) and
test sentences, the model's tags, and the report printed before training (sentences, tokens and
entities per type of each split).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from clearpipe.errors import InputError
from clearpipe.training.ner.read import NerFile, Sentence, ner_format, read_ner
from clearpipe.training.ner.tags import chunks, entity_types, tag_names

VALIDATION_FRACTION = 0.1


@dataclass(frozen=True)
class SplitReport:
    """What one split holds: where it came from, its format and scheme, and its counts."""

    name: str
    source: str
    format: str
    scheme: str
    sentences: int
    tokens: int
    entities: dict[str, int]


@dataclass(frozen=True)
class NerData:
    """The sentences of each split, the model's tags (O, then B-/I- per type) and the report."""

    train: list[Sentence]
    validation: list[Sentence]
    test: list[Sentence] | None
    tags: list[str]
    report: list[SplitReport]

    def to_dict(self) -> dict:
        return {"tags": self.tags, "splits": [asdict(s) for s in self.report]}


def is_ner_file(path: str | Path) -> bool:
    """Whether a file has a named-entity shape (see `read.ner_format`).

    >>> is_ner_file("reviews.csv")
    False
    """
    return ner_format(path) is not None


def read_ner_data(
    train: str, validation: str | None, test: str | None, encoding: str = "utf-8", seed: int = 42
) -> NerData:
    """Read the splits of a named-entity run; without `validation`, a seeded 10% of the training
    sentences. Every file must be a named-entity one: a table beside them is refused.

    >>> read_ner_data("train.txt", "valid.txt", None).tags  # doctest: +SKIP
    ['O', 'B-LOC', 'I-LOC', 'B-MISC', 'I-MISC', 'B-ORG', 'I-ORG', 'B-PER', 'I-PER']
    """
    files = {"training data": train, "--validation": validation, "--test": test}
    for flag, path in files.items():
        if path is not None and not is_ner_file(path):
            raise InputError(
                f"{flag} {path} is not a named-entity file (CoNLL columns, or JSONL with tokens/tags or "
                "text/entities); a named-entity run takes no table"
            )
    read = {name: read_ner(path, encoding) for name, path in files.items() if path is not None}
    train_file = read["training data"]
    if not train_file.sentences:
        raise InputError(f"{train}: no sentences")
    sentences, held = (
        _split(train_file.sentences, seed) if validation is None else (train_file.sentences, None)
    )
    val = held if held is not None else read["--validation"].sentences
    test_sentences = read["--test"].sentences if test is not None else None
    types = entity_types([s.tags for s in sentences])
    if not types:
        raise InputError(f"{train}: no entities in the training sentences")
    report = [_report("train", train_file, sentences)]
    report.append(_report("validation", read.get("--validation", train_file), val))
    if test_sentences is not None:
        report.append(_report("test", read["--test"], test_sentences))
    return NerData(sentences, val, test_sentences, tag_names(types), report)


def _split(sentences: list[Sentence], seed: int) -> tuple[list[Sentence], list[Sentence]]:
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    cut = max(1, round(len(order) * VALIDATION_FRACTION))
    if len(order) < 2:
        raise InputError(
            "one training sentence cannot be split into training and validation: pass --validation"
        )
    held = set(order[:cut])
    keep = [s for i, s in enumerate(sentences) if i not in held]
    return keep, [s for i, s in enumerate(sentences) if i in held]


def _report(name: str, file: NerFile, sentences: list[Sentence]) -> SplitReport:
    entities = Counter(c.type for s in sentences for c in chunks(s.tags))
    return SplitReport(
        name=name,
        source=file.source,
        format=file.format,
        scheme=file.scheme,
        sentences=len(sentences),
        tokens=sum(len(s.words) for s in sentences),
        entities=dict(sorted(entities.items())),
    )


def print_report(data: NerData) -> None:
    """Print each split's counts and a warning for types the training data never shows."""
    types = {t[2:] for t in data.tags if t != "O"}
    print(f"data: named entities, {len(types)} types ({', '.join(sorted(types))})", flush=True)
    for split in data.report:
        counts = ", ".join(f"{t} {n}" for t, n in split.entities.items()) or "none"
        print(
            f"  {split.name:<10} {split.source} ({split.format}, {split.scheme}): {split.sentences} sentences, "
            f"{split.tokens} tokens, {sum(split.entities.values())} entities ({counts})",
            flush=True,
        )
        unseen = sorted(split.entities.keys() - types)
        if unseen:
            print(
                f"  warning: {split.name} has types the training data lacks: {', '.join(unseen)}", flush=True
            )
