"""Sentences without tags for a distilled tagger (`clearpipe train --teacher T --unlabeled FILE`
on named-entity data): the student learns their words' tags from the teacher alone.

A tagger learns from every sentence the teacher reads, not only from the labelled ones, so text of
the same kind (more news for a news tagger) gives the student more of the teacher's knowledge
than the labelled file holds (Hinton et al., 2015's "transfer set").

Three shapes: a `.txt` file with one text per line (split into words as CoNLL writes them, see
`words.split_words`); a CoNLL file (`.conll`, or `.txt` with word/tag columns), whose words are
read and whose tags are not; `.jsonl` rows with `tokens` (a list of words) or `text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clearpipe.errors import InputError
from clearpipe.training.ner.read import CONLL, json_objects, ner_format, read_ner, strings
from clearpipe.training.ner.words import split_words


@dataclass(frozen=True)
class UnlabeledFile:
    """The word lists of an `--unlabeled` file and where they came from."""

    source: str
    format: str
    sentences: list[tuple[str, ...]]

    @property
    def tokens(self) -> int:
        return sum(len(s) for s in self.sentences)


def read_unlabeled_words(path: str | Path, encoding: str = "utf-8") -> UnlabeledFile:
    """The sentences of `path` as word tuples; blank lines and rows are skipped, a row that is not
    a sentence is refused naming it, and a file with no words at all is refused.

    >>> read_unlabeled_words("news.txt").sentences[0]  # doctest: +SKIP
    ('Toshiba', 'Corp', '.', 'announced', 'Tuesday', 'a', '80', 'gigabyte', 'hard', 'drive')
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--unlabeled {path}: no such file")
    suffix = path.suffix.lower()
    if ner_format(path) == CONLL:
        kind, sentences = "conll (tags not read)", [s.words for s in read_ner(path, encoding).sentences]
    elif suffix == ".txt":
        kind, sentences = "text lines", _lines(path, encoding)
    elif suffix == ".jsonl":
        kind, sentences = "jsonl", _rows(path, encoding)
    else:
        raise InputError(
            f"--unlabeled {path}: expected .txt (one text a line), CoNLL columns, or .jsonl rows with "
            '"tokens" or "text"'
        )
    sentences = [s for s in sentences if s]
    if not sentences:
        raise InputError(f"--unlabeled {path}: no words")
    return UnlabeledFile(str(path), kind, sentences)


def _lines(path: Path, encoding: str) -> list[tuple[str, ...]]:
    with path.open(encoding=encoding) as handle:
        return [tuple(w.text for w in split_words(line)) for line in handle]


def _rows(path: Path, encoding: str) -> list[tuple[str, ...]]:
    return [_row(row, place) for _, row, place in json_objects(path, encoding, f"--unlabeled {path}")]


def _row(row: dict, place: str) -> tuple[str, ...]:
    if "tokens" in row:
        return tuple(strings(row, "tokens", place))
    if isinstance(row.get("text"), str):
        return tuple(w.text for w in split_words(row["text"]))
    raise InputError(f'{place}: expected "tokens" (a list of words) or "text" (a string)')
