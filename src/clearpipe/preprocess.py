"""Stage 1, the tokenizer: texts -> subword ids -> padded tensors with an attention mask.

`tokenize` runs the fast tokenizer over every input at once and keeps rows unpadded, so that a
batching engine can group rows of similar length; `collate` pads a chosen set of rows
(`clearpipe.tokens.pad`, shared with the torch-free runners) into tensors; `preprocess` is both at once for callers that want one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tokenizers import Encoding
from transformers import PreTrainedTokenizerBase

from clearpipe.inputs import TextInput, cut
from clearpipe.tokens import Padded, Tokenized, pad


@dataclass(frozen=True)
class Encoded:
    """One padded batch, ready for the model.

    `input_ids`, `attention_mask` and `token_type_ids` are (batch, seq) int64 tensors;
    `attention_mask` is 1 for real tokens and 0 for padding. `lengths[i]` counts row i's real
    tokens and `truncated[i]` says whether row i lost tokens to `max_length`.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None
    lengths: list[int]
    truncated: list[bool]

    @classmethod
    def of(cls, padded: Padded) -> Encoded:
        """The torch view of a padded batch (no copy: the tensors share the arrays' memory)."""
        types = padded.token_type_ids
        return cls(
            input_ids=torch.from_numpy(padded.input_ids),
            attention_mask=torch.from_numpy(padded.attention_mask),
            token_type_ids=None if types is None else torch.from_numpy(types),
            lengths=padded.lengths,
            truncated=padded.truncated,
        )

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.input_ids.shape[0]), int(self.input_ids.shape[1]))

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def tokenize(
    tokenizer: PreTrainedTokenizerBase,
    items: Sequence[TextInput],
    max_length: int,
    use_token_type_ids: bool,
    keep_encodings: bool = False,
) -> Tokenized:
    """Tokenize texts and pairs in bulk, truncating each to `max_length` tokens.

    Single texts and pairs go to the tokenizer in two calls (it cannot mix them in one) and are
    put back in input order. `keep_encodings` keeps each row's `Encoding` (offsets, token strings).

    >>> tok = tokenize(tokenizer, ["a good film", ("a", "b")], max_length=128, use_token_type_ids=True)
    >>> tok.lengths  # doctest: +SKIP
    [5, 5]
    """
    items = [cut(item, max_length) for item in items]  # bounded memory: see `inputs.CHARS_PER_TOKEN`
    n = len(items)
    ids: list[list[int]] = [[] for _ in range(n)]
    types: list[list[int]] = [[] for _ in range(n)]
    truncated = [False] * n
    encodings: list[Encoding] = [None] * n  # type: ignore[list-item]
    singles = [i for i, item in enumerate(items) if isinstance(item, str)]
    pairs = [i for i, item in enumerate(items) if not isinstance(item, str)]
    groups = (
        (singles, {"text": [items[i] for i in singles]}),
        (pairs, {"text": [items[i][0] for i in pairs], "text_pair": [items[i][1] for i in pairs]}),
    )
    for rows, texts in groups:
        if not rows:
            continue
        enc = tokenizer(
            **texts,
            truncation=True,
            max_length=max_length,
            return_token_type_ids=use_token_type_ids,
            return_attention_mask=False,
        )
        for row, encoding, row_ids in zip(rows, enc.encodings, enc["input_ids"], strict=True):
            ids[row] = row_ids
            # The fast tokenizer keeps what truncation cut off; a non-empty remainder means
            # the text was longer than max_length.
            truncated[row] = bool(encoding.overflowing)
            encodings[row] = encoding
        if use_token_type_ids:
            for row, row_types in zip(rows, enc["token_type_ids"], strict=True):
                types[row] = row_types
    return Tokenized(
        ids, types if use_token_type_ids else None, truncated, encodings if keep_encodings else None
    )


def collate(
    tokenized: Tokenized,
    rows: Sequence[int],
    pad_token_id: int,
    padding_side: str = "right",
) -> Encoded:
    """Pad the chosen rows to the longest of them (`clearpipe.tokens.pad`) as torch tensors.

    >>> enc = collate(tok, rows=[1, 0], pad_token_id=0)
    >>> enc.shape  # doctest: +SKIP
    (2, 5)
    """
    return Encoded.of(pad(tokenized, rows, pad_token_id, padding_side))


def preprocess(
    tokenizer: PreTrainedTokenizerBase,
    items: Sequence[TextInput],
    max_length: int,
    use_token_type_ids: bool,
) -> Encoded:
    """Tokenize and pad `items` as one batch, in input order.

    >>> enc = preprocess(tokenizer, ["a good film", "bad"], max_length=128, use_token_type_ids=True)
    >>> enc.input_ids.shape  # doctest: +SKIP
    torch.Size([2, 5])
    """
    tokenized = tokenize(tokenizer, items, max_length, use_token_type_ids)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return collate(tokenized, range(len(tokenized)), pad_id, tokenizer.padding_side)
