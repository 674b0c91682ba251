"""The runners of a loaded model: how one batch of tokenized rows reaches it and comes back.

The loop that feeds them (token-budget batches, input order restored, an int8 model's close calls
re-run) is `clearpipe.engine.loop`, torch-free and shared with `clearpipe.lite`. Here:
`Runner` lays a torch model's batch out padded or, where padding would waste much and the model
can, packed (`packing`), and runs it through the model stage (`clearpipe.forward`) or
`packed_forward`; `runner_of` picks it, or `graphs.GraphRunner` for an exported graph; `referee`
builds an int8 torch model's float referee (`recheck`; an int8 export's is `graphs.export_referee`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel

from clearpipe.engine import first_token, int8, loop, packed_forward, packing, recheck
from clearpipe.engine.graphs import GraphRunner
from clearpipe.engine.loop import Referee
from clearpipe.forward import forward as forward_stage
from clearpipe.forward import forward_pooled
from clearpipe.preprocess import Encoded, Tokenized, collate


@dataclass(frozen=True)
class Runner:
    """A torch model as the engine runs it: where it runs, how its rows are padded, and whether it
    takes packed batches (`pack_offset`: where a packed row's position ids start, see
    `packed_forward.position_offset`; None for models that only run padded batches).
    """

    model: PreTrainedModel
    device: torch.device
    pack_offset: int | None
    pad_id: int = 0
    padding_side: str = "right"

    @classmethod
    def of(cls, model: PreTrainedModel, device: torch.device, pad_id: int = 0, side: str = "right") -> Runner:
        """The runner for a loaded transformers model.

        >>> Runner.of(clf.model, clf.device).pack_offset  # doctest: +SKIP
        0
        """
        packs = packed_forward.can_pack(model)
        return cls(model, device, packed_forward.position_offset(model) if packs else None, pad_id, side)

    @property
    def width(self) -> int:
        """Logits per row: the model's label count."""
        return int(self.model.config.num_labels)

    def batch(self, tokenized: Tokenized, rows: Sequence[int]) -> Encoded | packing.Packed:
        """The batch of these rows: packed when padding would waste much and the model can run
        packed, else padded.

        >>> runner.batch(tokenized, [0, 1]).input_ids.shape  # doctest: +SKIP
        torch.Size([2, 7])
        """
        if self.pack_offset is not None and packing.should_pack([len(tokenized.input_ids[r]) for r in rows]):
            return packing.pack(tokenized, rows, self.pack_offset)
        return collate(tokenized, rows, self.pad_id, self.padding_side)

    def forward(self, batch: Encoded | packing.Packed) -> torch.Tensor:
        """One batch, padded or packed -> float32 logits (rows, num_labels) on the CPU."""
        if isinstance(batch, packing.Packed):
            return packed_forward.forward_packed(self.model, batch)
        # Checked per call: a model whose attention was switched after load runs the layer whole.
        return forward_stage(self.model, batch, self.device, first_token.installed(self.model))

    def outputs(self, tokenized: Tokenized, rows: Sequence[int]) -> np.ndarray:
        """Logits (rows, num_labels) for these rows: the loop's call."""
        return self.forward(self.batch(tokenized, rows)).numpy()


@dataclass(frozen=True)
class PooledRunner:
    """A torch encoder as the engine runs it for embeddings: per row, the mean-pooled hidden
    states of `layers` (`clearpipe.forward.forward_pooled`), side by side, so `width` is
    len(layers) x hidden size. Rows are padded, never packed: mean pooling reads every token.

    >>> loop.run(tok, PooledRunner(encoder, torch.device("cpu")), loop.Budget(2048)).shape  # doctest: +SKIP
    (2, 384)
    """

    model: PreTrainedModel
    device: torch.device
    layers: tuple[int, ...] = (-1,)
    pad_id: int = 0
    padding_side: str = "right"
    bf16: bool = False  # under bf16 autocast

    @property
    def width(self) -> int:
        return len(self.layers) * int(self.model.config.hidden_size)

    def outputs(self, tokenized: Tokenized, rows: Sequence[int]) -> np.ndarray:
        """Pooled states (rows, width) for these rows."""
        encoded = collate(tokenized, rows, self.pad_id, self.padding_side)
        return forward_pooled(self.model, encoded, self.device, self.layers, self.bf16).numpy()


@dataclass(frozen=True)
class TokenRunner:
    """A torch token classifier as the engine runs it (`loop.run_tokens`): one logit vector per
    token, (rows, tokens, num_labels), each row's tokens first. Rows are padded, never packed, and
    the last layer computes every token (the first-token shortcut is for sequence heads only).

    >>> loop.run_tokens(tok, TokenRunner(model, torch.device("cpu")), loop.Budget(2048))[0].shape  # doctest: +SKIP
    (7, 9)
    """

    model: PreTrainedModel
    device: torch.device
    pad_id: int = 0
    padding_side: str = "right"

    @property
    def width(self) -> int:
        """Logits per token: the model's label count."""
        return int(self.model.config.num_labels)

    def outputs(self, tokenized: Tokenized, rows: Sequence[int]) -> np.ndarray:
        """Logits (rows, tokens, num_labels) for these rows, left padding moved to the end."""
        encoded = collate(tokenized, rows, self.pad_id, self.padding_side)
        logits = forward_stage(self.model, encoded, self.device).numpy()
        return loop.tokens_first(logits, encoded.lengths, self.padding_side)


def runner_of(model: object, device: torch.device, pad_id: int, side: str) -> Runner | GraphRunner:
    """The runner of a loaded model: `GraphRunner` for an exported graph (ONNX Runtime or
    OpenVINO, see `onnx_runtime.GraphModel`), else a torch `Runner`.

    >>> runner_of(clf.model, clf.device, 0, "right")  # doctest: +SKIP
    """
    graph = getattr(model, "graph", None)
    if graph is not None:
        return GraphRunner(graph, int(model.config.num_labels), pad_id, side)
    return Runner.of(model, device, pad_id, side)


def referee(
    model: PreTrainedModel, fast: Runner, budget: loop.Budget, sample: Tokenized, sigmoid: bool = False
) -> Referee:
    """The referee of the int8 model `fast` runs: `model`, its float twin, with a margin taken
    from both models' logits on the tokenized validation `sample` (see `clearpipe.engine.recheck`).

    `sigmoid` marks multi-label models, whose logits near zero are close calls too.

    >>> clf.referee = referee(float_model, clf.runner, clf.budget, clf.tokenize(sample))  # doctest: +SKIP
    """
    slow = Runner.of(model, fast.device, fast.pad_id, fast.padding_side)
    with int8.plain_kernels():  # a one-off: compiling would cost more than it saves
        fast_logits = loop.run(sample, fast, budget)
    margin = recheck.calibrate(fast_logits, loop.run(sample, slow, budget))
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")  # e.g. "bfloat16"
    return Referee(slow, dtype, margin, sigmoid)
