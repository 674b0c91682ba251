"""The engine's loop, torch-free: tokenized rows and a runner in, model outputs in input order out.

Every classifier runs its rows through `run`: `clearpipe.Classifier` with a torch model (padded or
packed batches, `clearpipe.engine.run.Runner`) or an exported graph, and `clearpipe.lite` with an
exported graph (`clearpipe.engine.graphs.GraphRunner`). The loop sorts rows by token length, cuts
them into token-budget batches (`batching.token_budget_batches`), hands each batch to the runner,
puts the outputs back in input order and, for an int8 model, re-runs its close calls on the float
referee (`clearpipe.engine.recheck`). What a runner returns per row decides the output's shape:

- one vector per row, (rows, width): a classifier's logits, or a pooled sentence embedding;
- one vector per token, (rows, tokens, width), row i's tokens at [i, :length] whatever side the
  runner padded on: a token classifier's logits. `run_tokens` cuts each row to its own length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from clearpipe.engine.batching import token_budget_batches
from clearpipe.engine.recheck import close_calls

if TYPE_CHECKING:
    from clearpipe.tokens import Tokenized


class Runner(Protocol):
    """Whatever turns a set of tokenized rows into model outputs: a torch model, padded or packed,
    or an ONNX Runtime / OpenVINO graph. `width` is the size of one output vector."""

    @property
    def width(self) -> int: ...

    def outputs(self, tokenized: Tokenized, rows: Sequence[int]) -> np.ndarray: ...


@dataclass(frozen=True)
class Referee:
    """The float model that re-scores an int8 model's close calls, and the margin that makes one.

    `runner` runs rows through the float model (a torch model's `clearpipe.engine.run.Runner`, or
    an int8 OpenVINO export's float graph); `dtype` names the float format it runs in.

    >>> Referee(float_runner, "bfloat16", 0.4).close_calls(np.array([[0.1, 0.3]])).tolist()  # doctest: +SKIP
    [0]
    """

    runner: Runner
    dtype: str
    margin: float
    sigmoid: bool = False  # multi-label scores: a logit near 0 is a close call too (`close_calls`)

    @property
    def model(self) -> object:
        """The float model itself, where the runner has one (`clearpipe trace` records it)."""
        return getattr(self.runner, "model", None)

    def close_calls(self, logits: np.ndarray) -> np.ndarray:
        """Rows of the int8 model's `logits` this referee re-runs (see `clearpipe.engine.recheck.close_calls`)."""
        return close_calls(logits, self.margin, self.sigmoid)


@dataclass(frozen=True)
class Budget:
    """How many rows a batch may hold: `max_tokens` padded tokens (rows x longest row) and
    `batch_size` rows; None: no limit."""

    max_tokens: int | None
    batch_size: int | None = None


@dataclass(frozen=True)
class Checked:
    """`run_checked`'s answer: the outputs in input order, which rows the referee re-ran (indices
    into them) and what the fast runner had given those rows."""

    outputs: np.ndarray
    rechecked: np.ndarray
    fast: np.ndarray


def run(
    tokenized: Tokenized,
    runner: Runner,
    budget: Budget,
    referee: Referee | None = None,
    rows: Sequence[int] | None = None,
) -> np.ndarray:
    """One output vector (rows, width) for every tokenized row (or only `rows`), in input order.

    With a `referee` (int8 models), rows whose decision int8 could have flipped run again on the
    referee's float runner and take its outputs.

    >>> run(clf.tokenize(["good", "bad"]), clf.runner, clf.budget).shape  # doctest: +SKIP
    (2, 2)
    """
    return run_checked(tokenized, runner, budget, referee, rows).outputs


def run_checked(
    tokenized: Tokenized,
    runner: Runner,
    budget: Budget,
    referee: Referee | None = None,
    rows: Sequence[int] | None = None,
) -> Checked:
    """`run`, also saying which rows the referee re-ran and what the fast runner gave them (for
    `clearpipe trace`, which shows both).

    >>> run_checked(tok, clf.runner, clf.budget, clf.referee).rechecked  # doctest: +SKIP
    array([0])
    """
    picked = list(range(len(tokenized))) if rows is None else list(rows)
    out = np.zeros((len(picked), runner.width), dtype=np.float32)
    for batch in _batches(tokenized, budget, picked):
        out[batch] = runner.outputs(tokenized, [picked[i] for i in batch])
    close = np.empty(0, dtype=np.int64) if referee is None or not len(out) else referee.close_calls(out)
    fast = out[close].copy()
    if len(close):
        out[close] = run(tokenized, referee.runner, budget, rows=[picked[i] for i in close])
    return Checked(out, close, fast)


def run_tokens(
    tokenized: Tokenized, runner: Runner, budget: Budget, rows: Sequence[int] | None = None
) -> list[np.ndarray]:
    """One output vector per token, (length, width) per row, for every tokenized row (or only
    `rows`), in input order. The runner returns (batch, tokens, width) with each row's tokens
    first (see the module docstring).

    >>> [a.shape for a in run_tokens(tok, runner, Budget(2048))]  # doctest: +SKIP
    [(5, 9), (3, 9)]
    """
    picked = list(range(len(tokenized))) if rows is None else list(rows)
    out: list[np.ndarray] = [np.zeros((0, runner.width), dtype=np.float32)] * len(picked)
    for batch in _batches(tokenized, budget, picked):
        per_token = runner.outputs(tokenized, [picked[i] for i in batch])  # (B, T, width)
        for j, i in enumerate(batch):
            out[i] = np.asarray(per_token[j, : len(tokenized.input_ids[picked[i]])], dtype=np.float32)
    return out


def tokens_first(per_token: np.ndarray, lengths: Sequence[int], padding_side: str) -> np.ndarray:
    """A padded batch's per-token outputs (B, T, width) with each row's tokens first, as
    `run_tokens` reads them: left padding moved to the end (in place; right padding is as is).

    >>> tokens_first(np.arange(3.0).reshape(1, 3, 1), [2], "left")[0, :2, 0].tolist()
    [1.0, 2.0]
    """
    if padding_side == "left":
        width = per_token.shape[1]
        for j, length in enumerate(lengths):
            per_token[j, :length] = per_token[j, width - length :].copy()
    return per_token


def _batches(tokenized: Tokenized, budget: Budget, picked: list[int]) -> list[list[int]]:
    """Positions in `picked`, in token-budget batches of length-sorted rows."""
    lengths = [len(tokenized.input_ids[row]) for row in picked]
    return list(token_budget_batches(lengths, budget.max_tokens, budget.batch_size))
