"""Training features: token ids per row through the classifier's own tokenizer stage, a max length
taken from the data, and a collator that pads batches with the engine's `collate`.

Training and inference therefore tokenize and pad identically (`clearpipe.preprocess`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from clearpipe.preprocess import Tokenized, collate, tokenize
from clearpipe.training.data import Split

LENGTH_PERCENTILE = 99


@dataclass(frozen=True)
class LengthStats:
    """Token lengths of the training rows (special tokens included) and the max length chosen."""

    rows: int
    mean: float
    p50: int
    p95: int
    p99: int
    longest: int
    model_limit: int
    max_length: int
    truncated: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def choose_max_length(lengths: list[int], model_limit: int) -> int:
    """The 99th percentile of the token lengths, rounded up to a multiple of 8, capped by the model.

    >>> choose_max_length([10, 12, 50], 512)
    56
    """
    p99 = int(np.ceil(np.percentile(lengths, LENGTH_PERCENTILE))) if lengths else model_limit
    return int(min(model_limit, max(8, -(-p99 // 8) * 8)))


def length_stats(
    tokenizer: PreTrainedTokenizerBase,
    split: Split,
    model_limit: int,
    max_length: int | None,
    use_token_type_ids: bool,
) -> LengthStats:
    """Measure the rows' token lengths at the model's limit and choose (or check) the max length."""
    lengths = tokenize(tokenizer, split.items, model_limit, use_token_type_ids).lengths
    chosen = max_length or choose_max_length(lengths, model_limit)
    arr = np.asarray(lengths)
    return LengthStats(
        rows=len(lengths),
        mean=round(float(arr.mean()), 1),
        p50=int(np.percentile(arr, 50)),
        p95=int(np.percentile(arr, 95)),
        p99=int(np.percentile(arr, 99)),
        longest=int(arr.max()),
        model_limit=model_limit,
        max_length=chosen,
        truncated=int((arr > chosen).sum()),
    )


def to_dataset(
    tokenizer: PreTrainedTokenizerBase,
    split: Split,
    max_length: int,
    use_token_type_ids: bool,
    num_labels: int,
    multi_label: bool,
):
    """A `datasets.Dataset` of token ids, labels and lengths (for length-grouped batches)."""
    import datasets

    tokenized = tokenize(tokenizer, split.items, max_length, use_token_type_ids)
    columns: dict[str, list] = {"input_ids": tokenized.input_ids, "length": tokenized.lengths}
    if tokenized.token_type_ids is not None:
        columns["token_type_ids"] = tokenized.token_type_ids
    if multi_label:
        columns["labels"] = [_multi_hot(ids, num_labels) for ids in split.labels]
    else:
        columns["labels"] = list(split.labels)
    return datasets.Dataset.from_dict(columns)


def _multi_hot(ids: list[int], num_labels: int) -> list[float]:
    row = [0.0] * num_labels
    for i in ids:
        row[i] = 1.0
    return row


@dataclass
class BatchShapes:
    """Padded batch shapes seen by the collator: what the model was actually fed."""

    batches: int = 0
    rows: int = 0
    first: tuple[int, int] | None = None
    widths: list[int] = field(default_factory=list)
    real_tokens: int = 0
    padded_tokens: int = 0

    def add(self, shape: tuple[int, int], real: int) -> None:
        self.batches += 1
        self.rows += shape[0]
        self.first = self.first or shape
        self.widths.append(shape[1])
        self.real_tokens += real
        self.padded_tokens += shape[0] * shape[1]

    def to_dict(self) -> dict:
        widths = np.asarray(self.widths or [0])
        return {
            "batches": self.batches,
            "first_batch": list(self.first) if self.first else None,
            "sequence_width": {
                "min": int(widths.min()),
                "mean": round(float(widths.mean()), 1),
                "max": int(widths.max()),
            },
            "padding_fraction": round(1 - self.real_tokens / self.padded_tokens, 3)
            if self.padded_tokens
            else 0.0,
        }


@dataclass
class Collator:
    """Pads a list of dataset rows into model inputs with `clearpipe.preprocess.collate`."""

    pad_token_id: int
    padding_side: str
    multi_label: bool
    shapes: BatchShapes = field(default_factory=BatchShapes)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        has_types = "token_type_ids" in features[0]
        tokenized = Tokenized(
            input_ids=[f["input_ids"] for f in features],
            token_type_ids=[f["token_type_ids"] for f in features] if has_types else None,
            truncated=[False] * len(features),
        )
        encoded = collate(tokenized, range(len(features)), self.pad_token_id, self.padding_side)
        self.shapes.add(encoded.shape, sum(encoded.lengths))
        batch = {"input_ids": encoded.input_ids, "attention_mask": encoded.attention_mask}  # (B, T) each
        if encoded.token_type_ids is not None:
            batch["token_type_ids"] = encoded.token_type_ids
        dtype = torch.float32 if self.multi_label else torch.long
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=dtype)  # (B,) or (B, L)
        if "teacher_logits" in features[0]:  # a distillation run's training rows (training.distill)
            batch["teacher_logits"] = torch.tensor([f["teacher_logits"] for f in features])  # (B, L)
            batch["labelled"] = torch.tensor([f["labelled"] for f in features], dtype=torch.bool)  # (B,)
        if "row" in features[0]:  # a hidden-state distillation run: rows index the teacher's states
            batch["row"] = torch.tensor([f["row"] for f in features], dtype=torch.long)  # (B,)
        return batch
