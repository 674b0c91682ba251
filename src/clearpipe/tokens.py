"""`Tokenized`: what the tokenizer stage hands on, token ids per input row, unpadded.

It lives apart from `clearpipe.preprocess` (which pads rows into torch tensors) so that the
torch-free parts, `clearpipe.lite` and the server's batcher, share the same type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Encoding


@dataclass(frozen=True)
class Tokenized:
    """Token ids per input row, unpadded, truncated to the classifier's `max_length`.

    `encodings` holds the fast tokenizer's `Encoding` per row (token strings, character offsets,
    special-token mask) when `tokenize` was asked to keep them, as `clearpipe trace` does.
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: list[bool]
    encodings: list[Encoding] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> list[int]:
        """Real tokens per row, special tokens included."""
        return [len(ids) for ids in self.input_ids]
