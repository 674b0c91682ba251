"""The torch-free half of stage 1 for named entities: what a tokenized input is (`Spans`), its
windows as engine rows (`TokenWindows`, `cut_windows`) and the windows' logits put back together
(`merge`).

`windows` fills `Spans` with transformers' fast tokenizer, `clearpipe.lite` with the `tokenizers`
library; both cut and merge here, so the same tokens give the same rows and the same logits.
Offsets index `Spans.text`: the input text itself, or for pre-split input the words joined by
single spaces (`joined`), as transformers' pipeline does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clearpipe.errors import InputError
from clearpipe.tokens import Tokenized

Words = Sequence[str]
"""One pre-split input: its words, in order."""


@dataclass(frozen=True)
class Spans:
    """One input's whole token sequence (special tokens included) and where each token is in
    `text`: `offsets[i]` is token i's (start, end), (0, 0) for special tokens; `words[i]` its word
    index (None for special tokens); `special[i]` whether the tokenizer added it."""

    text: str
    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    special: list[bool]
    words: list[int | None]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class TokenWindows:
    """Every input's `Spans` and its windows as engine rows: row r belongs to input `owner[r]`
    and its token j is that input's token `positions[r][j]`."""

    inputs: list[Spans]
    tokenized: Tokenized
    owner: list[int]
    positions: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.inputs)


def check_inputs(inputs: object, is_split_into_words: bool) -> tuple[list[str] | list[list[str]], bool]:
    """Inputs as a list (texts, or word lists when pre-split) and whether one input was given.

    As transformers does, a pre-split input is one list of words, or a list of such lists.

    >>> check_inputs(["Ada", "Lovelace"], is_split_into_words=True)
    ([['Ada', 'Lovelace']], True)
    """
    if not is_split_into_words:
        if isinstance(inputs, str):
            return [inputs], True
        if not isinstance(inputs, (list, tuple)):
            raise InputError(f"inputs must be a text or a list of texts, got {type(inputs).__name__}")
        for index, text in enumerate(inputs):
            if not isinstance(text, str):
                raise InputError(
                    f"input {index}: expected a text, got {type(text).__name__} "
                    "(for lists of words pass is_split_into_words=True)"
                )
        return list(inputs), False
    if not isinstance(inputs, (list, tuple)):
        raise InputError(
            f"is_split_into_words=True takes a list of words (or a list of such lists), got {type(inputs).__name__}"
        )
    single = not inputs or not all(isinstance(item, (list, tuple)) for item in inputs)
    batch = [inputs] if single else inputs
    for index, words in enumerate(batch):
        if not isinstance(words, (list, tuple)):
            raise InputError(f"input {index}: expected a list of words, got {type(words).__name__}")
        for position, word in enumerate(words):
            if not isinstance(word, str):
                raise InputError(
                    f"input {index}, word {position}: expected a string, got {type(word).__name__}"
                )
    return [list(words) for words in batch], single


def joined(words: Words) -> tuple[str, list[int]]:
    """The words joined by single spaces, and where each word starts in that text.

    >>> joined(["Ada", "met", "Alan"])
    ('Ada met Alan', [0, 4, 8])
    """
    starts, at = [], 0
    for word in words:
        starts.append(at)
        at += len(word) + 1
    return " ".join(words), starts


def offset(text: str, start: int, end: int, word_start: int | None) -> tuple[int, int]:
    """A token's (start, end) in `text`: moved by its word's start for pre-split input (the
    tokenizer's offsets are then within the word), and past a BPE token's leading space.

    >>> offset(" Ada", 0, 4, None)
    (1, 4)
    """
    if word_start is not None:  # pre-split: offsets are within the word
        start, end = start + word_start, end + word_start
    while start < end and text[start].isspace():  # a BPE token's leading space is not the word
        start += 1
    return start, end


def cut_windows(
    found: list[Spans], types: list[list[int]] | None, max_length: int, stride: int
) -> TokenWindows:
    """Every input cut into windows of at most `max_length` tokens that overlap by `stride`
    tokens (at most half a window), each with the input's special tokens; `types` are the
    inputs' token type ids where the model takes them.

    >>> cut_windows(spans_of_a_600_token_text, None, 256, 64).owner  # doctest: +SKIP
    [0, 0, 0]
    """
    ids: list[list[int]] = []
    row_types: list[list[int]] = []
    owner: list[int] = []
    positions: list[np.ndarray] = []
    for index, one in enumerate(found):
        for picked in _cut(one.special, max_length, stride):
            ids.append([one.ids[p] for p in picked])
            if types is not None:
                row_types.append([types[index][p] for p in picked])
            owner.append(index)
            positions.append(picked)
    tokenized = Tokenized(ids, row_types if types is not None else None, [False] * len(ids))
    return TokenWindows(found, tokenized, owner, positions)


def _cut(special: list[bool], max_length: int, stride: int) -> list[np.ndarray]:
    """Positions of each window of one sequence: the leading and trailing special tokens, and a
    run of the content tokens between them."""
    n = len(special)
    if n <= max_length:
        return [np.arange(n)]
    content = [i for i, flag in enumerate(special) if not flag]
    first, last = content[0], content[-1] + 1
    head, tail = np.arange(first), np.arange(last, n)
    size = max_length - len(head) - len(tail)
    if size < 1:
        raise InputError(f"max_length {max_length} leaves no room for text beside the special tokens")
    step = size - min(stride, size // 2)
    out = []
    for start in range(first, last, step):
        end = min(start + size, last)
        out.append(np.concatenate([head, np.arange(start, end), tail]))
        if end == last:
            break
    return out


def merge(per_row: Sequence[np.ndarray], cut: TokenWindows) -> list[np.ndarray]:
    """Per-token logits per input (tokens, labels) from the windows' rows: each token takes the
    row in which it is farthest from the window's edges (ties: the earlier window).

    >>> [a.shape for a in merge(loop.run_tokens(cut.tokenized, runner, budget), cut)]  # doctest: +SKIP
    [(612, 9)]
    """
    width = per_row[0].shape[1] if len(per_row) else 0
    out = [np.zeros((len(one), width), dtype=np.float32) for one in cut.inputs]
    best = [np.full(len(one), -1, dtype=np.int64) for one in cut.inputs]
    for row, (index, picked) in enumerate(zip(cut.owner, cut.positions, strict=True)):
        j = np.arange(len(picked))
        depth = np.minimum(j, len(picked) - 1 - j)  # distance to the nearer edge of the window
        better = depth > best[index][picked]
        out[index][picked[better]] = per_row[row][better]
        best[index][picked[better]] = depth[better]
    return out
