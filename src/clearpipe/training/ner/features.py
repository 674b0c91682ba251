"""Sentences into token ids with their labels on the first sub-token of each word (the others
-100, as transformers' token-classification example does), the batches' collator, and the
model's outputs back into one tag per word.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clearpipe.errors import InputError
from clearpipe.training.ner.read import Sentence

IGNORED = -100  # the label of special tokens and of every sub-token after a word's first
UNLABELED = -1  # the label of a word without a gold tag (`--unlabeled`): the teacher alone teaches it


def to_dataset(
    tokenizer,
    sentences: Sequence[Sentence],
    tags: Sequence[str],
    max_length: int,
    teacher: Sequence[np.ndarray] | None = None,
    unlabeled: Sequence[Sequence[str]] = (),
):
    """A `datasets.Dataset` of input ids, labels and lengths (the length-grouping column), and with
    `teacher` (each sentence's word logits, `ner.distill`) a `teacher_logits` column per token.
    The `unlabeled` word lists follow the sentences, their words labelled `UNLABELED`; `teacher`
    then covers both, sentences first.

    >>> to_dataset(tokenizer, data.train, data.tags, 256).column_names  # doctest: +SKIP
    ['input_ids', 'token_type_ids', 'attention_mask', 'labels', 'length']
    """
    import datasets

    if not getattr(tokenizer, "is_fast", False):
        raise InputError(
            "named-entity training needs a fast tokenizer (word ids per token); this base has none"
        )
    if unlabeled and teacher is None:
        raise InputError("--unlabeled sentences learn from a teacher: pass --teacher too")
    ids = {tag: i for i, tag in enumerate(tags)}
    words = [list(s.words) for s in sentences] + [list(u) for u in unlabeled]
    word_labels = [[ids.get(t, 0) for t in s.tags] for s in sentences]  # unseen types: O
    word_labels += [[UNLABELED] * len(u) for u in unlabeled]
    encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    labels = [_first_token_labels(encoded.word_ids(i), row) for i, row in enumerate(word_labels)]
    columns = dict(encoded) | {"labels": labels, "length": [len(x) for x in encoded["input_ids"]]}
    if teacher is not None:
        columns["teacher_logits"] = [
            per_token(logits, row, encoded.word_ids(i))
            for i, (logits, row) in enumerate(zip(teacher, labels, strict=True))
        ]
    return datasets.Dataset.from_dict(columns)


def per_token(word_logits: np.ndarray, labels: Sequence[int], word_ids: Sequence[int | None]) -> list:
    """The teacher's logits laid on the student's tokens: a word's row on its first sub-token (the
    labelled one), NaN elsewhere, as the `teacher_logits` column of the training set.

    >>> per_token(np.ones((1, 2)), [-100, 0, -100], [None, 0, None])
    [[nan, nan], [1.0, 1.0], [nan, nan]]
    """
    blank = [float("nan")] * word_logits.shape[1]
    return [
        blank if label == IGNORED or word is None else word_logits[word].tolist()
        for label, word in zip(labels, word_ids, strict=True)
    ]


def _first_token_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    out, before = [], None
    for word in word_ids:
        out.append(IGNORED if word is None or word == before else word_labels[word])
        before = word
    return out


def truncated(dataset, words: Sequence[Sequence[str]]) -> int:
    """How many sentences (the word lists the dataset was made from) lost words to the length limit."""
    return sum(
        sum(label != IGNORED for label in row) < len(w)
        for row, w in zip(dataset["labels"], words, strict=True)
    )


class Collator:
    """transformers' `DataCollatorForTokenClassification` (labels padded with -100), without the
    length column that only the length-grouping sampler reads; a distillation run's
    `teacher_logits` are padded with NaN on the side the tokenizer pads."""

    def __init__(self, tokenizer) -> None:
        from transformers import DataCollatorForTokenClassification

        self.inner = DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORED)
        self.left = tokenizer.padding_side == "left"

    def __call__(self, features: list[dict]) -> dict:
        skipped = ("length", "teacher_logits")
        batch = self.inner([{k: v for k, v in f.items() if k not in skipped} for f in features])
        if features and "teacher_logits" in features[0]:
            batch["teacher_logits"] = self._teacher(features, batch["labels"].shape[1])
        return batch

    def _teacher(self, features: list[dict], width: int):
        import torch

        rows = [torch.as_tensor(f["teacher_logits"], dtype=torch.float32) for f in features]
        out = torch.full((len(rows), width, rows[0].shape[1]), float("nan"))
        for i, row in enumerate(rows):
            if self.left:
                out[i, width - len(row) :] = row
            else:
                out[i, : len(row)] = row
        return out


def labelled_tags(predicted: np.ndarray, labels: np.ndarray, tags: Sequence[str]):
    """Gold and predicted tags at the labelled positions (one per word the length limit kept), for
    the Trainer's evaluation: it runs rows in length order, so the labels serve as the gold tags.

    >>> labelled_tags(np.array([[0, 1, 2, 0]]), np.array([[-100, 1, 1, -100]]), ["O", "B-PER", "I-PER"])
    ([['B-PER', 'B-PER']], [['B-PER', 'I-PER']])
    """
    gold, found = [], []
    for row, mask in zip(predicted, labels, strict=True):
        kept = mask != IGNORED
        gold.append([tags[int(i)] for i in mask[kept]])
        found.append([tags[int(i)] for i in row[kept]])
    return gold, found
