"""The engine's one entry point: tokenized rows and a model in, logits in input order out.

`run` cuts the rows into token-budget batches of length-sorted rows (`batching`), lays each
batch out padded or, where padding would waste much and the model can, packed (`packing`),
runs it through the model (`Runner.forward`: the model stage, `clearpipe.forward`, or
`packed_forward` for packed batches), and, for int8 models, re-runs the close calls through the
float referee (`recheck`). Everything that decides *how* rows reach the model lives here, so
that `Classifier` only composes the three stages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel

from clearpipe.engine import batching, first_token, int8, packed_forward, packing, recheck
from clearpipe.engine.recheck import Referee
from clearpipe.forward import forward as forward_stage
from clearpipe.preprocess import Encoded, Tokenized, collate

Forward = Callable[[Encoded | packing.Packed], torch.Tensor]


@dataclass(frozen=True)
class Runner:
    """One model as the engine runs it: where it runs and whether it takes packed batches.

    `pack_offset` is where a packed row's position ids start (`packed_forward.position_offset`),
    or None for models that only run padded batches.
    """

    model: PreTrainedModel
    device: torch.device
    pack_offset: int | None

    @classmethod
    def of(cls, model: PreTrainedModel, device: torch.device) -> Runner:
        """The runner for a loaded model (a transformers model or an ONNX Runtime one).

        >>> Runner.of(clf.model, clf.device).pack_offset  # doctest: +SKIP
        0
        """
        packs = packed_forward.can_pack(model)
        return cls(model, device, packed_forward.position_offset(model) if packs else None)

    def forward(self, batch: Encoded | packing.Packed) -> torch.Tensor:
        """One batch, padded or packed -> float32 logits (rows, num_labels) on the CPU."""
        if isinstance(batch, packing.Packed):
            return packed_forward.forward_packed(self.model, batch)
        # Checked per call: a model whose attention was switched after load runs the layer whole.
        return forward_stage(self.model, batch, self.device, first_token.installed(self.model))


@dataclass(frozen=True)
class Layout:
    """How rows become batches: padding token and side, the token budget and the row cap."""

    num_labels: int
    pad_id: int
    padding_side: str
    max_tokens: int | None
    batch_size: int | None

    def batch(
        self, tokenized: Tokenized, rows: Sequence[int], pack_offset: int | None
    ) -> Encoded | packing.Packed:
        """The batch of these rows: packed when padding would waste much and the model can run
        packed (`pack_offset` not None), else padded.

        >>> layout.batch(tokenized, [0, 1], None).input_ids.shape  # doctest: +SKIP
        torch.Size([2, 7])
        """
        if pack_offset is not None and packing.should_pack([len(tokenized.input_ids[r]) for r in rows]):
            return packing.pack(tokenized, rows, pack_offset)
        return collate(tokenized, rows, self.pad_id, self.padding_side)


def run(
    tokenized: Tokenized,
    runner: Runner,
    layout: Layout,
    referee: Referee | None = None,
    rows: Sequence[int] | None = None,
) -> np.ndarray:
    """Logits (rows, num_labels) for every tokenized row (or only `rows`), in input order.

    With a `referee` (int8 models), rows whose decision int8 could have flipped run again in
    float and take the referee's logits.

    >>> run(clf.tokenize(["good", "bad"]), clf.runner, clf.layout).shape  # doctest: +SKIP
    (2, 2)
    """
    logits = _batches(tokenized, runner.forward, runner.pack_offset, layout, rows)
    if referee is not None:
        close = referee.close_calls(logits)
        if len(close):
            picked = close if rows is None else [rows[i] for i in close]
            logits[close] = _batches(tokenized, referee.forward, referee.pack_offset, layout, picked)
    return logits


def referee(
    model: PreTrainedModel, fast: Runner, layout: Layout, sample: Tokenized, sigmoid: bool = False
) -> Referee:
    """The referee of the int8 model `fast` runs: `model`, its float twin, with a margin taken
    from both models' logits on the tokenized validation `sample` (see `clearpipe.engine.recheck`).

    `sigmoid` marks multi-label models, whose logits near zero are close calls too.

    >>> clf.referee = referee(float_model, clf.runner, clf.layout, clf.tokenize(sample))  # doctest: +SKIP
    """
    slow = Runner.of(model, fast.device)
    with int8.plain_kernels():  # a one-off: compiling would cost more than it saves
        fast_logits = run(sample, fast, layout)
    margin = recheck.calibrate(fast_logits, run(sample, slow, layout))
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")  # e.g. "bfloat16"
    return Referee(model, dtype, margin, slow.forward, slow.pack_offset, sigmoid)


def referee_of_export(model, margin: float, sigmoid: bool = False) -> Referee:
    """The referee of an int8 OpenVINO export: its float graph `model` (`load_openvino`'s
    `REFEREE_FILE`), with the margin the export measured (`exported.referee_margin`).

    >>> clf.referee = referee_of_export(float_graph, 0.4)  # doctest: +SKIP
    """
    slow = Runner.of(model, torch.device("cpu"))
    return Referee(model, f"openvino {model.precision}", margin, slow.forward, None, sigmoid)


def _batches(
    tokenized: Tokenized,
    forward: Forward,
    pack_offset: int | None,
    layout: Layout,
    rows: Sequence[int] | None,
) -> np.ndarray:
    def batch(t: Tokenized, picked: Sequence[int]) -> Encoded | packing.Packed:
        return layout.batch(t, picked, pack_offset)

    return batching.run_batches(
        tokenized,
        layout.num_labels,
        layout.batch_size,
        batch,
        forward,
        max_tokens=layout.max_tokens,
        rows=rows,
    )
