"""The batching engine: run many inputs through the three stages with as little padding as possible.

Rows are sorted by token length so that each batch pads only to its own longest row, run
batch by batch through `forward`, and put back in input order before post-processing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from clearpipe.preprocess import Encoded, Tokenized


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Yield row indices in batches of at most `batch_size`, longest rows first.

    >>> list(length_sorted_batches([3, 9, 1, 5], batch_size=2))
    [[1, 3], [0, 2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def run_batches(
    tokenized: Tokenized,
    num_labels: int,
    batch_size: int,
    collate: Callable[[Tokenized, Sequence[int]], Encoded],
    forward: Callable[[Encoded], torch.Tensor],
) -> np.ndarray:
    """Return logits (rows, num_labels) for every tokenized row, in input order.

    >>> logits = run_batches(tok, 2, 32, collate=clf.collate, forward=clf.forward)  # doctest: +SKIP
    """
    logits = np.zeros((len(tokenized), num_labels), dtype=np.float32)
    for rows in length_sorted_batches(tokenized.lengths, batch_size):
        logits[rows] = forward(collate(tokenized, rows)).numpy()
    return logits
