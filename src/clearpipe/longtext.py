"""Texts longer than the model's `max_length`: truncate them, or classify them in windows.

With `long_text="chunk"`, each single text's token sequence is cut into windows of `max_length`
tokens (special tokens included) that overlap by `stride` tokens. Every window is a row for the
same batching engine; the windows' probabilities are then averaged per text ("mean") or the
highest probability per label is kept ("max"). Texts that fit in one window give exactly the
truncate-mode result. Text pairs are always truncated (one window): cutting a pair in windows
has no single right answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from transformers import PreTrainedTokenizerBase

from clearpipe.errors import InputError
from clearpipe.inputs import TextInput
from clearpipe.preprocess import Tokenized, tokenize

LONG_TEXT_MODES = ("truncate", "chunk")
AGGREGATIONS = ("mean", "max")


@dataclass(frozen=True)
class Windows:
    """Every window of every input as one `Tokenized`, and which input each window belongs to.

    `owner[w]` is the input index of window `w`; `counts[i]` is how many windows input `i` has.
    """

    tokenized: Tokenized
    owner: np.ndarray  # (windows,)
    counts: np.ndarray  # (inputs,)


def check_long_text(long_text: str, aggregate: str) -> None:
    """Refuse unknown `long_text` / `aggregate` values with an `InputError`."""
    if long_text not in LONG_TEXT_MODES:
        raise InputError(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}; got {long_text!r}")
    if aggregate not in AGGREGATIONS:
        raise InputError(f"aggregate must be one of {', '.join(AGGREGATIONS)}; got {aggregate!r}")


def tokenize_windows(
    tokenizer: PreTrainedTokenizerBase,
    items: Sequence[TextInput],
    max_length: int,
    stride: int,
    use_token_type_ids: bool,
) -> Windows:
    """Tokenize `items` into overlapping windows of at most `max_length` tokens each.

    >>> w = tokenize_windows(tokenizer, ["word " * 1000, "short"], 128, 16, True)
    >>> w.counts.tolist()  # doctest: +SKIP
    [9, 1]
    """
    singles = [i for i, item in enumerate(items) if isinstance(item, str)]
    pairs = [i for i, item in enumerate(items) if not isinstance(item, str)]
    ids: list[list[int]] = []
    types: list[list[int]] = []
    owner: list[int] = []
    if singles:
        specials = tokenizer.num_special_tokens_to_add(pair=False)
        # The tokenizer requires the overlap to be shorter than a window's text part.
        overlap = max(0, min(stride, (max_length - specials) // 2))
        enc = tokenizer(
            [items[i] for i in singles],
            truncation=True,
            max_length=max_length,
            stride=overlap,
            return_overflowing_tokens=True,
            return_token_type_ids=use_token_type_ids,
            return_attention_mask=False,
        )
        ids += enc["input_ids"]
        types += enc["token_type_ids"] if use_token_type_ids else []
        owner += [singles[s] for s in enc["overflow_to_sample_mapping"]]
    if pairs:
        tok = tokenize(tokenizer, [items[i] for i in pairs], max_length, use_token_type_ids)
        ids += tok.input_ids
        types += tok.token_type_ids or []
        owner += pairs
    owners = np.asarray(owner, dtype=np.int64)
    tokenized = Tokenized(ids, types if use_token_type_ids else None, [False] * len(ids))
    return Windows(tokenized, owners, np.bincount(owners, minlength=len(items)))


def aggregate_windows(scores: np.ndarray, windows: Windows, how: str = "mean") -> np.ndarray:
    """Combine per-window scores (windows, labels) into per-input scores (inputs, labels).

    "mean" averages the windows' probabilities; "max" keeps, per label, its highest probability
    over the windows (rows then need not sum to 1).

    >>> aggregate_windows(np.array([[0.9, 0.1], [0.3, 0.7]]), w, "mean")  # doctest: +SKIP
    array([[0.6, 0.4]])
    """
    n, labels = len(windows.counts), scores.shape[1]
    if how == "mean":
        total = np.zeros((n, labels), dtype=np.float64)
        np.add.at(total, windows.owner, scores)
        return total / np.maximum(windows.counts, 1)[:, None]
    if how == "max":
        best = np.full((n, labels), -np.inf, dtype=np.float64)
        np.maximum.at(best, windows.owner, scores)
        return best
    raise InputError(f"aggregate must be one of {', '.join(AGGREGATIONS)}; got {how!r}")
