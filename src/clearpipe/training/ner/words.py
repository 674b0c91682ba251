"""Texts into words with their character offsets, and character spans onto those words: how the
JSONL that annotation tools export (text plus entity spans) becomes words and IOB2 tags.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from clearpipe.errors import InputError

# A run of letters/digits/underscores is one word, and every other visible character is one word
# on its own, as CoNLL-2003 splits "U.S.-based" into U . S . - based.
WORD = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Span:
    """An annotated entity: characters [start, end) of the text, and its type."""

    start: int
    end: int
    label: str


def split_words(text: str) -> list[Word]:
    """The words of `text` at whitespace and punctuation, with their character offsets.

    >>> [w.text for w in split_words("Mr. O'Neil flew to New York.")]
    ['Mr', '.', 'O', "'", 'Neil', 'flew', 'to', 'New', 'York', '.']
    """
    return [Word(m.group(), m.start(), m.end()) for m in WORD.finditer(text)]


def spans_to_tags(text: str, spans: Sequence[Span], words: Sequence[Word], where: str) -> list[str]:
    """IOB2 tags of `words` for the entity `spans` of `text`; `where` names the row in errors.

    Whitespace at a span's ends is trimmed (tools often select it along); a span that then
    starts or ends inside a word, runs past the text, or overlaps another is refused.

    >>> text = "Ada Lovelace met Babbage"
    >>> spans_to_tags(text, [Span(0, 12, "PER")], split_words(text), "row 1")
    ['B-PER', 'I-PER', 'O', 'O']
    """
    starts = {w.start: i for i, w in enumerate(words)}
    ends = {w.end: i for i, w in enumerate(words)}
    tags = ["O"] * len(words)
    taken: list[tuple[int, int, int]] = []  # (start, end, entity number) of the spans placed so far
    for n, span in enumerate(spans, start=1):
        start, end = _trimmed(text, span, f"{where}, entity {n}")
        first, last = starts.get(start), ends.get(end)
        if first is None or last is None:
            raise InputError(
                f"{where}, entity {n} ({span.label!r}, characters {span.start}-{span.end}, "
                f"{text[span.start : span.end]!r}) does not fall on word boundaries"
            )
        for s, e, other in taken:
            if start < e and s < end:
                raise InputError(f"{where}: entities {other} and {n} overlap (characters {start}-{end})")
        taken.append((start, end, n))
        tags[first : last + 1] = [f"B-{span.label}"] + [f"I-{span.label}"] * (last - first)
    return tags


def _trimmed(text: str, span: Span, where: str) -> tuple[int, int]:
    if not 0 <= span.start < span.end:
        raise InputError(f"{where}: start {span.start} and end {span.end} are not a span (0 <= start < end)")
    if span.end > len(text):
        raise InputError(f"{where}: end {span.end} is past the text's end ({len(text)} characters)")
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        raise InputError(f"{where}: characters {span.start}-{span.end} are only whitespace")
    return start, end
