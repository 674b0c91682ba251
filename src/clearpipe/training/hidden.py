"""Hidden-state distillation: each student layer learns a teacher layer's sentence representation.

Logit distillation hands a two-label student one number per row. With `--distill-hidden W`,
student layer k (of Ls) also learns teacher layer round(k * Lt / Ls): both are mean-pooled over
the row's tokens (the default bases were trained as mean-pooled sentence encoders), the
student's vector is mapped to the teacher's width by a learnt linear map (TinyBERT's W_h, since
the student is narrower), and the loss adds W times the mean squared distance between the two
unit vectors (Patient KD, Sun et al. 2019; on unit vectors it is 2 - 2 cos, so no layer's scale
dominates). The teacher's pooled states are computed once and cached beside the run in parts, as
its logits are. The maps ride on the model during training, so checkpoints, `--resume` and the
best-epoch reload carry them, and are taken off before the model is saved: the folder stays a
plain transformers checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from clearpipe.forward import mean_pool
from clearpipe.inputs import TextInput

CACHE = "teacher_hidden"
PROJECTION = "clearpipe_hidden_projection"
BATCH_ROWS = 64
MAX_TOKENS = 256  # the teacher's truncation (or its own limit, if lower): rows here are far shorter


def layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """The teacher layer (1-based hidden-state index) each student layer 1..Ls learns.

    >>> layer_map(6, 12)
    [2, 4, 6, 8, 10, 12]
    """
    return [round(k * teacher_layers / student_layers) for k in range(1, student_layers + 1)]


def teacher_states(
    teacher: str, items: Sequence[TextInput], student_layers: int, run: Path, fingerprint: str
) -> np.ndarray:
    """The teacher's mean-pooled states (rows, Ls, Ht) at `layer_map`'s layers, float16, cached.

    Parts of `distill.CHUNK_ROWS` rows go to `run/teacher_hidden/<fingerprint>-L<Ls>/`; a part
    is written whole or not at all, so an interrupted pass loses one part at most.

    >>> teacher_states("runs/teacher", ["good"], 6, out, "ab12").shape  # doctest: +SKIP
    (1, 6, 768)
    """
    from clearpipe.training.distill import CHUNK_ROWS

    folder = run / CACHE / f"{fingerprint}-L{student_layers}"
    folder.mkdir(parents=True, exist_ok=True)
    encoder = None  # loaded only when a part is missing
    parts = []
    for start in range(0, len(items), CHUNK_ROWS):
        path = folder / f"part-{start // CHUNK_ROWS:05d}.npy"
        if not path.is_file():
            encoder = encoder or _Encoder(teacher, student_layers)
            states = encoder.pooled(items[start : start + CHUNK_ROWS])
            partial = path.with_suffix(".partial.npy")
            np.save(partial, states)
            partial.replace(path)
            done = min(start + CHUNK_ROWS, len(items))
            print(f"teacher {teacher}: hidden states of {done}/{len(items)} rows", flush=True)
        parts.append(np.load(path))
    return np.concatenate(parts) if parts else np.zeros((0, student_layers, 0), np.float16)


class _Encoder:
    """The teacher's encoder, pooling its hidden states over batches of like token lengths.

    Rows go through the inference stages' own tokenizing, padding and input steps
    (`preprocess.tokenize`, `preprocess.collate`, `forward.model_inputs`), so texts and pairs are
    cut and padded as the classifier's are.
    """

    def __init__(self, teacher: str, student_layers: int) -> None:
        from transformers import AutoModel, AutoTokenizer

        from clearpipe.engine.precision import resolve_dtype
        from clearpipe.loading import (
            model_max_length,
            quiet_transformers,
            resolve_source,
            uses_token_type_ids,
        )

        source = resolve_source(teacher)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        with quiet_transformers():  # a classifier's folder: its head is dropped, as intended
            self.model = AutoModel.from_pretrained(source).eval()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        # bf16 where the chip computes it natively (the engine's "auto"): the states are stored
        # as float16 anyway.
        self.bf16 = resolve_dtype("auto", self.device) == "bfloat16"
        self.layers = layer_map(student_layers, self.model.config.num_hidden_layers)
        self.max_length = min(MAX_TOKENS, model_max_length(self.model.config, self.tokenizer))
        self.use_types = uses_token_type_ids(self.model, self.tokenizer)

    def pooled(self, items: Sequence[TextInput]) -> np.ndarray:
        from clearpipe.engine import loop
        from clearpipe.engine.run import PooledRunner
        from clearpipe.preprocess import tokenize

        tokenized = tokenize(self.tokenizer, items, self.max_length, self.use_types)
        pad = self.tokenizer.pad_token_id or 0
        side = self.tokenizer.padding_side
        runner = PooledRunner(self.model, self.device, tuple(self.layers), pad, side, self.bf16)
        flat = loop.run(tokenized, runner, loop.Budget(max_tokens=None, batch_size=BATCH_ROWS))
        return flat.reshape(len(items), len(self.layers), -1).astype(np.float16)  # (rows, Ls, Ht)


def attach(model: torch.nn.Module, teacher_width: int) -> None:
    """Give `model` one learnt map per layer from its width to the teacher's (for training only).

    >>> attach(student, 768)  # doctest: +SKIP
    """
    width, layers = model.config.hidden_size, model.config.num_hidden_layers
    maps = torch.nn.ModuleList(torch.nn.Linear(width, teacher_width) for _ in range(layers))
    model.add_module(PROJECTION, maps)


def detach(model: torch.nn.Module) -> None:
    """Take the maps off `model` before it is saved, so the folder is a plain checkpoint.

    >>> detach(student)  # doctest: +SKIP
    """
    if hasattr(model, PROJECTION):
        delattr(model, PROJECTION)


def loss(model: torch.nn.Module, hidden: Sequence[torch.Tensor], mask: torch.Tensor, teacher: torch.Tensor):
    """Mean over rows and layers of |unit(map_k(pool(student_k))) - unit(teacher_k)|².

    `hidden` is the student's `output_hidden_states` (embeddings, then one per layer), `mask`
    the (B, T) attention mask, `teacher` the (B, Ls, Ht) cached states.

    >>> loss(student, outputs.hidden_states, batch["attention_mask"], states)  # doctest: +SKIP
    tensor(0.83)
    """
    maps = getattr(model, PROJECTION)
    normalize = torch.nn.functional.normalize
    distances = []
    for k, project in enumerate(maps):
        student = normalize(project(mean_pool(hidden[k + 1].float(), mask)), dim=-1)  # (B, Ht)
        target = normalize(teacher[:, k].float(), dim=-1)
        distances.append(((student - target) ** 2).sum(dim=-1))  # (B,)
    return torch.stack(distances, dim=1).mean()
