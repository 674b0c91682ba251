"""Padding-free batches: a batch's rows as one packed sequence, for batches that would pad a lot.

A padded batch computes every layer on rows x its longest row, real tokens or not. The offline
engine sorts rows by length, so its batches pad little; a server's micro-batch holds whatever
arrived together, and random groups of 29 SST-2 sentences padded to their longest ran at 547
texts/s against 814 packed. `pack` lays the batch's tokens end to end (1, N): the linear
layers, LayerNorm and GELU then run on real tokens only, and `clearpipe.engine.attention` gathers each
row's tokens back into (rows, longest row) for the attention product alone, with padded keys
masked. The classification head runs on each row's first token (`clearpipe.forward`).

Supported: BERT, DistilBERT and RoBERTa classifiers in bf16/fp16 on the CPU (the models that run
`clearpipe.engine.attention`); `should_pack` says when a batch is worth it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from clearpipe.preprocess import Tokenized

WASTE = 1.25
"""Pack a batch when padding would make it this many times its real tokens or more."""

ROUND_TOKENS = 32
"""A packed sequence's length is rounded up to a multiple of this. oneDNN builds (and caches) a
kernel for each matrix shape, and a server's micro-batch has a token count never seen before
almost every time: random groups of 31 SST-2 sentences ran 4-10% slower the first time their
shapes were seen than the second. Rounding keeps the shapes few, for at most 31 extra tokens."""


@dataclass(frozen=True)
class Packed:
    """One batch as a packed sequence, and what puts its rows back together.

    `input_ids`, `position_ids` and `token_type_ids` are (1, N): the batch's real tokens, then
    filler up to a multiple of `ROUND_TOKENS`, laid out as extra rows ("slots" below are the
    rows, then the filler rows). `starts[i]` is where row i begins (real rows only: the head
    reads nothing else); `gather` (slots x T) indexes each slot's tokens in the packed sequence,
    slot after slot, padded with 0 (any token: padded keys are masked, and padded queries'
    outputs are dropped); `real` (N) indexes the N tokens among slots x T, and `key_mask`
    (slots, 1, 1, T) is 0 for them and the most negative float32 elsewhere.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    token_type_ids: torch.Tensor | None
    starts: torch.Tensor
    gather: torch.Tensor
    real: torch.Tensor
    key_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.starts.shape[0])


def should_pack(lengths: Sequence[int]) -> bool:
    """True when padding `lengths` to the longest would cost `WASTE` times the real tokens or more.

    Rows without tokens (no first token for the head to read) are always padded.

    >>> should_pack([10, 10, 9]), should_pack([40, 10, 12])
    (False, True)
    """
    return bool(lengths) and min(lengths) > 0 and len(lengths) * max(lengths) >= WASTE * sum(lengths)


def pack(tokenized: Tokenized, rows: Sequence[int], position_offset: int = 0) -> Packed:
    """Pack the given rows of `tokenized`; positions count from `position_offset` in every row
    (RoBERTa's start after its padding index).

    The packed sequence is filled up to a multiple of `ROUND_TOKENS` with filler rows that
    attend only to themselves and that no head reads.

    >>> p = pack(tokenize(tokenizer, ["a good film", "bad"], 128, True), [0, 1])  # doctest: +SKIP
    >>> p.input_ids.shape, len(p)  # doctest: +SKIP
    (torch.Size([1, 32]), 2)
    """
    ids = [tokenized.input_ids[r] for r in rows]
    real_lengths = [len(x) for x in ids]
    width = max(real_lengths)
    filler = _filler_lengths(sum(real_lengths), width)
    lengths = np.asarray(real_lengths + filler, dtype=np.int64)
    total = int(lengths.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    offsets = np.arange(width)
    real = offsets[None, :] < lengths[:, None]  # (rows + fillers, T)
    gather = np.where(real, starts[:, None] + offsets[None, :], 0)
    positions = np.arange(total) - np.repeat(starts, lengths) + position_offset
    # Filler tokens repeat the first token id, type 0: any valid token will do.
    fill = [ids[0][0]] * sum(filler)
    types = None
    if tokenized.token_type_ids is not None:
        types = torch.tensor([t for r in rows for t in tokenized.token_type_ids[r]] + [0] * len(fill))[None]
    key_mask = np.where(real, 0.0, np.finfo(np.float32).min).astype(np.float32)
    return Packed(
        input_ids=torch.tensor([t for x in ids for t in x] + fill)[None],
        position_ids=torch.from_numpy(positions)[None],
        token_type_ids=types,
        starts=torch.from_numpy(starts[: len(ids)]),
        gather=torch.from_numpy(gather.reshape(-1)),
        real=torch.from_numpy(np.flatnonzero(real)),
        key_mask=torch.from_numpy(key_mask)[:, None, None, :],
    )


def _filler_lengths(tokens: int, width: int) -> list[int]:
    """Rows of at most `width` tokens that fill `tokens` up to a multiple of `ROUND_TOKENS`."""
    missing = -tokens % ROUND_TOKENS
    return [min(width, missing - start) for start in range(0, missing, width)]


def unpack_heads(packed: Packed, states: torch.Tensor) -> torch.Tensor:
    """Attention inputs (1, heads, N, d) -> per-row (rows and fillers, heads, T, d)."""
    _, heads, _, dim = states.shape
    # transformers' (1, heads, N, d) is a view of (N, heads, d): gather whole token rows at once.
    tokens = states[0].transpose(0, 1).reshape(-1, heads * dim)
    rows = tokens.index_select(0, packed.gather).view(packed.key_mask.shape[0], -1, heads, dim)
    return rows.transpose(1, 2)


def repack(packed: Packed, per_row: torch.Tensor) -> torch.Tensor:
    """Attention output (rows, T, heads, d) -> packed (1, N, heads, d), padding dropped."""
    rows, width, heads, dim = per_row.shape
    return per_row.reshape(rows * width, heads, dim).index_select(0, packed.real)[None]
