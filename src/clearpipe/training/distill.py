"""Knowledge distillation: a student trained toward a larger teacher's softened scores.

With `clearpipe train --teacher MODEL`, the teacher classifies every training row once, through
clearpipe's own engine (`clearpipe.load`: token-budget batches, bf16 where the CPU has it), and
its logits are cached beside the run in parts, so an interrupted run reuses what was done. The
loss of a labelled row mixes the teacher's distribution at temperature T (KL divergence, scaled
by T² so its gradients keep their size as T grows; Hinton et al. 2015) with cross-entropy on the
true label: `weight * KD + (1 - weight) * CE`. Rows without a label (`--unlabeled FILE`:
unlabelled or augmented text) learn from the teacher alone. Multi-label models use the
teacher's sigmoid scores as soft targets of a binary cross-entropy.

Several teachers (`--teacher A --teacher B`) teach as one: the mean of their logits, each
teacher cached on its own, so adding a second teacher to a run reuses the first one's pass.
Averaging raw logits (a product of the teachers' distributions) keeps the loss unchanged; with
two labels and two teachers it picks the label that averaging their probabilities would. Saved
calibration temperatures are not applied: the loss has its own temperature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clearpipe.errors import InputError
from clearpipe.inputs import TextInput
from clearpipe.loading import load_config, resolve_source
from clearpipe.tables.columns import TEXT_NAMES, pick_column
from clearpipe.tables.read import read_chunks, read_columns

CACHE = "teacher_logits"
CHUNK_ROWS = 4096
"""Rows per cached part: a part is the most an interrupted teacher pass loses."""


@dataclass(frozen=True)
class Distillation:
    """The teachers (usually one) and how much the student listens to them.

    >>> Distillation(teachers=("runs/teacher",)).temperature
    2.0
    """

    teachers: tuple[str, ...]
    temperature: float = 2.0
    weight: float = 0.5  # share of a labelled row's loss that comes from the teacher
    hidden_weight: float = 0.0  # weight of the hidden-state loss (`training.hidden`); 0: logits only

    def __post_init__(self) -> None:
        # One teacher given as a plain string (as before several were allowed) is one teacher,
        # not a tuple of its characters.
        if isinstance(self.teachers, str | Path):
            object.__setattr__(self, "teachers", (str(self.teachers),))
        else:
            object.__setattr__(self, "teachers", tuple(str(t) for t in self.teachers))

    def check(self) -> None:
        """Refuse settings that make no sense, naming the flag."""
        if not self.teachers:
            raise InputError("distillation needs at least one --teacher")
        if len(set(self.teachers)) != len(self.teachers):
            raise InputError(f"--teacher names the same model twice: {', '.join(self.teachers)}")
        if self.temperature <= 0:
            raise InputError(f"--distill-temperature must be above 0, got {self.temperature}")
        if not 0.0 <= self.weight <= 1.0:
            raise InputError(f"--distill-weight must be between 0 and 1, got {self.weight}")
        if self.hidden_weight < 0:
            raise InputError(f"--distill-hidden must be 0 or more, got {self.hidden_weight}")
        if self.hidden_weight and len(self.teachers) > 1:
            # Two teachers' hidden spaces have nothing in common, so their states cannot be averaged.
            raise InputError("--distill-hidden learns one teacher's hidden states: give one --teacher")


def label_order(teacher_labels: Sequence[str], student_labels: Sequence[str], teacher: str) -> list[int]:
    """The teacher's output index of each student label, refusing a teacher with other labels.

    >>> label_order(["pos", "neg"], ["neg", "pos"], "t")
    [1, 0]
    """
    if sorted(teacher_labels) != sorted(student_labels):
        raise InputError(
            f"--teacher {teacher} has labels {', '.join(teacher_labels)} but the data has "
            f"{', '.join(student_labels)}: a teacher must score the same labels"
        )
    return [list(teacher_labels).index(name) for name in student_labels]


def teacher_logits(
    distillation: Distillation, items: Sequence[TextInput], labels: Sequence[str], run: Path
) -> np.ndarray:
    """The teachers' mean logits (rows, labels) for `items`, in the student's label order, cached.

    Each teacher's parts in `run/teacher_logits/<fingerprint>/` are reused; the fingerprint covers
    the teacher's folder or id, its config and weights' size and the texts, so a changed teacher
    or changed data never reuses stale logits.

    >>> teacher_logits(Distillation(("runs/teacher",)), ["good", "bad"], ["negative", "positive"], out)  # doctest: +SKIP
    array([[-3.1,  2.9], [ 2.7, -2.5]], dtype=float32)
    """
    each = [one_teacher_logits(teacher, items, labels, run) for teacher in distillation.teachers]
    return np.mean(each, axis=0, dtype=np.float32)


def one_teacher_logits(
    teacher: str, items: Sequence[TextInput], labels: Sequence[str], run: Path
) -> np.ndarray:
    """One teacher's logits (rows, labels) for `items`, in the student's label order, cached in parts.

    >>> one_teacher_logits("runs/teacher", ["good"], ["negative", "positive"], out)  # doctest: +SKIP
    array([[-3.1,  2.9]], dtype=float32)
    """
    import clearpipe

    source = resolve_source(teacher)
    config = load_config(source)
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    order = label_order(names, labels, teacher)
    folder = run / CACHE / fingerprint(source, items)
    folder.mkdir(parents=True, exist_ok=True)
    classifier = None  # loaded only when a part is missing: a resumed run may need no teacher at all
    parts = []
    for start in range(0, len(items), CHUNK_ROWS):
        path = folder / f"part-{start // CHUNK_ROWS:05d}.npy"
        if not path.is_file():
            classifier = classifier or clearpipe.load(source)
            chunk = items[start : start + CHUNK_ROWS]
            logits = classifier.logits(classifier.tokenize(chunk)).astype(np.float32)
            partial = path.with_suffix(".partial.npy")
            np.save(partial, logits)
            partial.replace(path)  # a part is whole or absent
            done = min(start + CHUNK_ROWS, len(items))
            print(f"teacher {teacher}: {done}/{len(items)} rows scored", flush=True)
        parts.append(np.load(path))
    return np.concatenate(parts)[:, order] if parts else np.zeros((0, len(labels)), np.float32)


def read_unlabeled(path: Path, text_column: str | None = None) -> list[str]:
    """The texts of a table for `--unlabeled` (.txt, .csv, .tsv, .jsonl, .json, .parquet); any label
    column is ignored and empty texts are skipped.

    >>> read_unlabeled(Path("augmented.tsv"))[:1]  # doctest: +SKIP
    ['a charming , often affecting journey']
    """
    column = pick_column(read_columns(path), text_column, TEXT_NAMES, "text", "--text-column", path)
    texts = [
        str(row[column]).strip()
        for chunk in read_chunks(path, chunk_rows=CHUNK_ROWS)
        for row in chunk.rows
        if row.get(column) is not None and str(row[column]).strip()
    ]
    if not texts:
        raise InputError(f"{path}: --unlabeled holds no texts")
    return texts


def fingerprint(source: str, items: Sequence[TextInput]) -> str:
    """A short key for a teacher and the texts it scores: its folder or id, config, weights' sizes.

    >>> fingerprint("runs/teacher", ["good"])  # doctest: +SKIP
    '3f2a9c01d4e5b6a7'
    """
    digest = hashlib.sha256(source.encode())
    config = Path(source) / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
        for weights in sorted(Path(source).glob("*.safetensors")):
            digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    digest.update(json.dumps(list(items), ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    labelled: torch.Tensor,
    distillation: Distillation,
    hard_loss: torch.Tensor,
    multi_label: bool,
) -> torch.Tensor:
    """The batch's distillation loss: per row `weight*KD + (1-weight)*CE`, KD alone when unlabelled.

    `student` and `teacher` are logits (B, L), `labelled` a (B,) bool mask, `hard_loss` the (B,)
    per-row loss on the true labels (zero where unlabelled).

    >>> loss(s, t, y, torch.tensor([True]), Distillation(("t",)), ce, False)  # doctest: +SKIP
    tensor(0.41)
    """
    t = distillation.temperature
    if multi_label:
        soft = torch.sigmoid(teacher / t)
        kd = torch.nn.functional.binary_cross_entropy_with_logits(student / t, soft, reduction="none")
        kd = kd.mean(dim=1) * t * t  # (B,)
    else:
        kd = soft_loss(student, teacher, t)
    w = distillation.weight
    mixed = torch.where(labelled, w * kd + (1 - w) * hard_loss, kd)
    return mixed.mean()


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per row KL(teacher || student) of the logits (N, labels) softened at `temperature`, times
    temperature² so that its gradients keep their size as the temperature grows.

    >>> soft_loss(torch.zeros(1, 2), torch.zeros(1, 2), 2.0)
    tensor([0.])
    """
    log_student = torch.log_softmax(student / temperature, dim=1)
    log_teacher = torch.log_softmax(teacher / temperature, dim=1)
    return (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1) * temperature**2
