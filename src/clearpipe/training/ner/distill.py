"""Named-entity distillation: a student tagger learns each word's tag distribution from a larger
tagger's, as `training.distill` does for whole texts (`clearpipe train --teacher` on CoNLL data).

The teacher and the student may split words differently (mpnet-base's and MiniLM's tokenizers),
so the teacher speaks per word: its logits at each word's first sub-token
(`Tagger.predict_word_logits`), the token the student is trained and scored on
(`features.per_token` lays them there). They are computed once through clearpipe's engine and
cached beside the run in parts, as for classification. A word's loss is
`weight * KD + (1 - weight) * CE`, KD being the KL divergence at temperature T (times T²); a word
the teacher has no tokens for learns from its label alone, and a word of an `--unlabeled`
sentence (label `UNLABELED`) from the teacher alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer

from clearpipe.loading import load_config, resolve_source
from clearpipe.training import distill
from clearpipe.training.distill import Distillation
from clearpipe.training.ner.features import IGNORED, UNLABELED
from clearpipe.training.ner.read import Sentence

CHUNK_SENTENCES = 4096
"""Sentences per cached part: a part is the most an interrupted teacher pass loses."""


def teacher_word_logits(
    distillation: Distillation,
    sentences: Sequence[Sentence],
    tags: Sequence[str],
    run: Path,
    unlabeled: Sequence[Sequence[str]] = (),
) -> list[np.ndarray]:
    """The teachers' mean logits per word, (words, tags) per sentence in the student's tag order:
    one array per sentence, then one per `unlabeled` word list.

    >>> teacher_word_logits(Distillation(("runs/teacher",)), data.train, data.tags, out)[0].shape  # doctest: +SKIP
    (9, 9)
    """
    words = [list(s.words) for s in sentences] + [list(u) for u in unlabeled]
    each = [_one_teacher(teacher, words, tags, run) for teacher in distillation.teachers]
    return [np.mean(per_teacher, axis=0, dtype=np.float32) for per_teacher in zip(*each, strict=True)]


def _one_teacher(teacher: str, words: list[list[str]], tags: Sequence[str], run: Path) -> list[np.ndarray]:
    import clearpipe

    source = resolve_source(teacher)
    config = load_config(source)
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    order = distill.label_order(names, tags, teacher)
    folder = run / distill.CACHE / distill.fingerprint(source, words)
    folder.mkdir(parents=True, exist_ok=True)
    tagger = None  # loaded only when a part is missing: a resumed run may need no teacher at all
    out: list[np.ndarray] = []
    for start in range(0, len(words), CHUNK_SENTENCES):
        chunk = words[start : start + CHUNK_SENTENCES]
        path = folder / f"part-{start // CHUNK_SENTENCES:05d}.npy"
        if not path.is_file():
            tagger = tagger or clearpipe.load(source)
            flat = np.concatenate(tagger.predict_word_logits(chunk)).astype(np.float32)
            partial = path.with_suffix(".partial.npy")
            np.save(partial, flat)
            partial.replace(path)  # a part is whole or absent
            print(f"teacher {teacher}: {start + len(chunk)}/{len(words)} sentences scored", flush=True)
        flat = np.load(path)[:, order]
        out += np.split(flat, np.cumsum([len(w) for w in chunk])[:-1])
    return out


class TokenDistillationTrainer(Trainer):
    """transformers' Trainer whose training loss, per labelled word, mixes the teacher's softened
    distribution with the gold tag; evaluation batches (no teacher) keep the model's own loss."""

    loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides by accumulation steps

    def __init__(self, *args, distillation: Distillation, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.distillation = distillation

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher = inputs.pop("teacher_logits", None)
        if teacher is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        kept = labels != IGNORED
        student = outputs.logits.float()[kept]  # (words, tags)
        gold = labels[kept]
        soft = teacher.float()[kept]
        known = ~torch.isnan(soft).any(dim=1)
        labelled = gold != UNLABELED
        # Where the teacher has no row, the student stands in for it: that word's KD term is zero.
        soft = torch.where(known[:, None], soft, student.detach())
        hard = torch.nn.functional.cross_entropy(student, gold.clamp(min=0), reduction="none")
        kd = distill.soft_loss(student, soft, self.distillation.temperature)
        w = self.distillation.weight
        per_word = torch.where(known, torch.where(labelled, w * kd + (1 - w) * hard, kd), hard)
        # A word with neither a tag nor a teacher's row (no teacher tokens) teaches nothing.
        counted = labelled | known
        loss = (per_word * counted).sum() / counted.sum().clamp(min=1)
        return (loss, outputs) if return_outputs else loss
