"""Named-entity files: CoNLL columns, JSONL with `tokens` and `tags`, JSONL with `text` and
character `entities`; what shape a file has (`ner_format`), and reading one into IOB2 sentences.

Line and row numbers count from 1, every line included, so they match an editor's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from clearpipe.errors import InputError
from clearpipe.training.ner.tags import detect_scheme, to_iob2
from clearpipe.training.ner.words import Span, spans_to_tags, split_words

CONLL = "conll"
TOKENS = "tokens"  # JSONL rows {"tokens": [...], "tags": [...]}
SPANS = "spans"  # JSONL rows {"text": "...", "entities": [{"start", "end", "label"}]}
DOCSTART = "-DOCSTART-"
TAG = re.compile(r"^(O|[BIES]-\S+)$")


@dataclass(frozen=True)
class Sentence:
    """One sentence: its words, their IOB2 tags, and the line (CoNLL) or row (JSONL) it starts on."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class NerFile:
    """A file's sentences with the format and tag scheme it was written in."""

    source: str
    format: str
    scheme: str
    sentences: list[Sentence]


def ner_format(path: str | Path) -> str | None:
    """ "conll", "tokens" or "spans" when the file's shape is a named-entity one, else None.

    A .conll file is CoNLL; a .txt file is when its first line of words has two or more columns,
    the last one a tag; a .jsonl file when its first row has `tokens` and `tags`, or `text` and
    `entities`.

    >>> ner_format("/work/shared/data/conll2003/train.txt")  # doctest: +SKIP
    'conll'
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file() or suffix not in (".conll", ".txt", ".jsonl"):
        return None
    first = _first_line(path)
    if suffix == ".conll":
        return CONLL
    if suffix == ".txt":
        columns = first.split()
        looks = first.startswith(DOCSTART) or (len(columns) >= 2 and TAG.match(columns[-1]))
        return CONLL if looks else None
    try:
        row = json.loads(first)
    except ValueError:
        return None
    if isinstance(row, dict) and {"tokens", "tags"} <= row.keys():
        return TOKENS
    if isinstance(row, dict) and {"text", "entities"} <= row.keys():
        return SPANS
    return None


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.strip():
                return line.strip()
    return ""


def read_ner(path: str | Path, encoding: str = "utf-8") -> NerFile:
    """Read a named-entity file (see `ner_format`) into IOB2 sentences; a file that is not one,
    or a line that breaks its format, is refused naming the file and line or row.

    >>> read_ner("train.conll").sentences[0].tags  # doctest: +SKIP
    ('B-ORG', 'O', 'B-MISC', 'O', 'O', 'O', 'B-MISC', 'O', 'O')
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = ner_format(path)
    if kind is None:
        raise InputError(
            f"{path}: not a named-entity file (CoNLL word/tag columns in .conll/.txt, or .jsonl rows "
            'with "tokens" and "tags", or "text" and "entities")'
        )
    read = _conll_sentences if kind == CONLL else _jsonl_sentences
    raw = list(read(path, encoding, kind))
    scheme = detect_scheme([r.tags for r in raw])
    sentences = [Sentence(tuple(r.words), tuple(_to_iob2(r, scheme, raw, path, kind)), r.line) for r in raw]
    return NerFile(str(path), kind, scheme, [s for s in sentences if s.words])


def _to_iob2(sentence: _Raw, scheme: str, raw: list[_Raw], path: Path, kind: str) -> list[str]:
    """`sentence`'s tags in IOB2. A file is BIOES as soon as one tag is E- or S-; a sentence
    without any that is not valid BIOES then means the file mixes schemes (a stray E-/S- tag in
    IOB2 data, say), and the error names both places rather than BIOES's rule alone."""
    try:
        return to_iob2(sentence.tags, scheme, sentence.where)
    except InputError as exc:
        if scheme != "BIOES" or any(_bioes_only(tag) for tag in sentence.tags):
            raise
        first, i = next((r, i) for r in raw for i, tag in enumerate(r.tags) if _bioes_only(tag))

        def place(where: str) -> str:
            return where.removeprefix(f"{path}, ")

        unit = "line" if kind == CONLL else "row"

        raise InputError(
            f"{path}: the file mixes tag schemes: {place(first.where(i))} has {first.tags[i]}, a BIOES "
            f"tag, so the file is read as BIOES, but the sentence at {unit} {sentence.line} has no "
            f"E-/S- tag and is not valid BIOES ({place(str(exc))}); write the file in one scheme: "
            "fix the stray E-/S- tags, or tag every sentence in BIOES"
        ) from None


def _bioes_only(tag: str) -> bool:
    return tag[:2] in ("E-", "S-")


@dataclass(frozen=True)
class _Raw:
    """A sentence as read: words, tags as written, its first line or row, and `where(i)`, the
    place of tag i for error messages."""

    words: list[str]
    tags: list[str]
    line: int
    where: Callable[[int], str]


def _conll_sentences(path: Path, encoding: str, kind: str = CONLL) -> Iterator[_Raw]:
    width = 0  # the number of columns, fixed by the first word line
    words, tags, lines = [], [], []
    with path.open(encoding=encoding) as handle:
        for number, line in enumerate(handle, start=1):
            columns = line.split()
            if not columns or columns[0] == DOCSTART:
                if words:
                    yield _conll_raw(path, words, tags, lines)
                words, tags, lines = [], [], []
                continue
            width = width or len(columns)
            if len(columns) != width or width < 2:
                raise InputError(
                    f"{path}, line {number}: {len(columns)} columns where the file has "
                    f"{max(width, 2)} (word first, tag last)"
                )
            words.append(columns[0])
            tags.append(columns[-1])
            lines.append(number)
    if words:
        yield _conll_raw(path, words, tags, lines)


def _conll_raw(path: Path, words: list[str], tags: list[str], lines: list[int]) -> _Raw:
    return _Raw(words, tags, lines[0], lambda i: f"{path}, line {lines[i]}")


def _jsonl_sentences(path: Path, encoding: str, kind: str) -> Iterator[_Raw]:
    for number, row, place in json_objects(path, encoding, str(path)):
        words, tags = _tokens_row(row, place) if kind == TOKENS else _spans_row(row, place)
        yield _Raw(words, tags, number, lambda i, p=place: f"{p}, tag {i + 1}")


def json_objects(path: Path, encoding: str, name: str) -> Iterator[tuple[int, dict, str]]:
    """(row number, object, "NAME, row N") for each non-blank line of a JSONL file; a line that is
    not a JSON object is refused naming its row."""
    with path.open(encoding=encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            place = f"{name}, row {number}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{place}: not a JSON object ({exc})") from None
            if not isinstance(row, dict):
                raise InputError(f"{place}: not a JSON object")
            yield number, row, place


def _tokens_row(row: dict, place: str) -> tuple[list[str], list[str]]:
    words, tags = strings(row, "tokens", place), strings(row, "tags", place)
    if len(words) != len(tags):
        raise InputError(f"{place}: {len(words)} tokens but {len(tags)} tags")
    return words, tags


def strings(row: dict, key: str, place: str) -> list[str]:
    """`row[key]` when it is a list of strings; else an error naming `place` and the field."""
    value = row.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f'{place}, field "{key}": expected a list of strings')
    return value


def _spans_row(row: dict, place: str) -> tuple[list[str], list[str]]:
    text, entities = row.get("text"), row.get("entities")
    if not isinstance(text, str):
        raise InputError(f'{place}, field "text": expected a string')
    if not isinstance(entities, list):
        raise InputError(f'{place}, field "entities": expected a list of {{"start", "end", "label"}}')
    spans = [_span(entity, f"{place}, entity {n}") for n, entity in enumerate(entities, start=1)]
    words = split_words(text)
    return [w.text for w in words], spans_to_tags(text, spans, words, place)


def _span(entity: object, place: str) -> Span:
    if not isinstance(entity, dict):
        raise InputError(f'{place}: expected an object with "start", "end" and "label"')
    start, end, label = entity.get("start"), entity.get("end"), entity.get("label")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise InputError(f'{place}: "start" and "end" must be whole numbers')
    if not isinstance(label, str) or not label or any(c.isspace() for c in label) or label == "O":
        raise InputError(f'{place}: "label" must be a type name without spaces, such as "PER"')
    return Span(start, end, label)
