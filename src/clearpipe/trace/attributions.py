"""Token attributions by Integrated Gradients on the input embeddings.

For input word embeddings x and a baseline x0 (every non-special token replaced by the padding
token, special tokens kept), the attribution of token i toward the target logit F is

    a_i = sum_h (x - x0)_ih * integral_0^1 dF/dx_ih (x0 + alpha (x - x0)) d alpha

computed with Gauss-Legendre quadrature, many quadrature points per batched pass. By
construction the attributions sum to F(x) - F(x0) (completeness); the error of the quadrature is
measured and reported, and the number of steps doubled until it is within the tolerance.

This needs gradients, so it is a computation of its own next to `forward.forward`, which runs
under `torch.inference_mode`. It moves inputs with `forward.model_inputs`; position and token-type
embeddings are added by the model as usual, because only the word embeddings are replaced.
"""

from __future__ import annotations

import copy
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clearpipe.engine import int8, linears
from clearpipe.forward import model_inputs
from clearpipe.preprocess import Encoded

DEFAULT_STEPS = 32
MAX_STEPS = 512
TOLERANCE = 0.05
"""Completeness holds when |sum(a) - (F(x) - F(x0))| <= TOLERANCE * max(|F(x) - F(x0)|, ATOL)."""
ATOL = 1e-3
"""Below this many logits, a difference is judged absolutely: relative error would only be noise."""
CHUNK_TOKENS = 2048
"""Tokens per batched forward/backward pass: 64 points of a 32-token text, 4 of a 512-token one,
so that a long text's backward pass (attention maps of every layer) stays within memory."""


@dataclass(frozen=True)
class Completeness:
    """The check sum(attributions) == F(input) - F(baseline), and how close it came."""

    total: float
    logit_input: float
    logit_baseline: float
    tolerance: float

    @property
    def delta(self) -> float:
        return self.logit_input - self.logit_baseline

    @property
    def error(self) -> float:
        """|sum - delta| relative to |delta| (or to ATOL when |delta| is smaller)."""
        return abs(self.total - self.delta) / max(abs(self.delta), ATOL)

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance


@dataclass(frozen=True)
class Word:
    """A word re-assembled from its sub-word tokens; its attribution is theirs summed."""

    text: str
    segment: int
    span: tuple[int, int]
    tokens: list[int]
    attribution: float


@dataclass(frozen=True)
class Attributions:
    """Integrated Gradients toward `target` (a label index); `scores[i]` belongs to token i."""

    target: int
    baseline_token: str
    steps: int
    scores: list[float]
    completeness: Completeness
    time_ms: float
    words: list[Word] | None = None
    method: str = "integrated_gradients"

    def with_words(self, tokens: Sequence[_TokenLike], segments: Sequence[str]) -> Attributions:
        """These attributions with `words` filled in from the tokens' word indices and spans."""
        return replace(self, words=assemble_words(tokens, self.scores, segments))

    def to_dict(self) -> dict[str, Any]:
        c = self.completeness
        return {
            "method": self.method,
            "target": self.target,
            "baseline_token": self.baseline_token,
            "steps": self.steps,
            "scores": list(self.scores),
            "completeness": {
                "sum": c.total,
                "logit_input": c.logit_input,
                "logit_baseline": c.logit_baseline,
                "delta": c.delta,
                "error": c.error,
                "tolerance": c.tolerance,
                "ok": c.ok,
            },
            "words": None
            if self.words is None
            else [
                {
                    "text": w.text,
                    "segment": w.segment,
                    "span": list(w.span),
                    "tokens": list(w.tokens),
                    "attribution": w.attribution,
                }
                for w in self.words
            ],
            "time_ms": self.time_ms,
        }


class _TokenLike(Protocol):
    index: int
    segment: int | None
    span: tuple[int, int] | None
    word: int | None


def baseline_token(tokenizer: PreTrainedTokenizerBase) -> tuple[int, str]:
    """The id and text of the baseline token: padding if the tokenizer has one, else [MASK]-style."""
    for token_id, token in (
        (tokenizer.pad_token_id, tokenizer.pad_token),
        (tokenizer.mask_token_id, tokenizer.mask_token),
    ):
        if token_id is not None:
            return int(token_id), str(token)
    return 0, tokenizer.convert_ids_to_tokens(0)


def integrated_gradients(
    model: PreTrainedModel,
    encoded: Encoded,
    device: torch.device,
    target: int,
    special: Sequence[bool],
    baseline: tuple[int, str],
    steps: int = DEFAULT_STEPS,
    tolerance: float = TOLERANCE,
) -> Attributions:
    """Attribute the `target` logit of one tokenized row to its tokens, by Integrated Gradients.

    `special[i]` marks tokens kept as they are in the baseline (so their attribution is 0);
    `baseline` is `baseline_token(tokenizer)`. Steps double from `steps` up to `MAX_STEPS` until the
    completeness error is within `tolerance`.

    >>> enc = clf.collate(clf.tokenize(["a good film"]), [0])  # doctest: +SKIP
    >>> ig = integrated_gradients(clf.model, enc, clf.device, 1, [True, False, False, False, True],
    ...                           baseline_token(clf.tokenizer))  # doctest: +SKIP
    >>> ig.completeness.ok  # doctest: +SKIP
    True
    """
    if encoded.input_ids.shape[0] != 1:
        raise ValueError("integrated_gradients attributes one row at a time")
    start = time.perf_counter()
    model = float32_model(model)
    inputs = model_inputs(encoded, device)
    ids = inputs.pop("input_ids")  # (1, T)
    keep = torch.tensor(list(special), dtype=torch.bool, device=ids.device).view(1, -1)  # (1, T)
    embed = model.get_input_embeddings()
    with torch.no_grad():
        x = embed(ids)  # (1, T, H)
        x0 = embed(torch.where(keep, ids, torch.full_like(ids, baseline[0])))  # (1, T, H)
        ends = _logits(model, torch.cat([x, x0]), inputs)[:, target]  # (2,)
    while True:
        grads = _path_gradients(model, x, x0, inputs, target, steps)  # (1, T, H)
        scores = ((x - x0) * grads).sum(dim=-1)[0].float()  # (T,)
        check = Completeness(float(scores.sum()), float(ends[0]), float(ends[1]), tolerance)
        if check.ok or steps >= MAX_STEPS:
            break
        steps *= 2
    return Attributions(
        target=target,
        baseline_token=baseline[1],
        steps=steps,
        scores=[float(s) for s in scores.cpu()],
        completeness=check,
        time_ms=(time.perf_counter() - start) * 1000.0,
    )


_FLOAT32_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def float32_model(model: PreTrainedModel) -> PreTrainedModel:
    """`model` itself if it computes in float32, else a float32 copy of it, made once per model.

    Gradients along the path are too coarse in bf16/fp16 for the completeness check to hold
    (errors near 50% were measured on the default model), so a reduced-precision classifier is
    explained by its float32 weights: the same weights, widened (for int8, dequantized).
    """
    quantized = any(isinstance(m, int8.Int8Linear) for m in model.modules())
    if next(model.parameters()).dtype == torch.float32 and not quantized:
        return model
    if model not in _FLOAT32_COPIES:
        # An int8 model is explained by the weights its kernels use: int8 values times scales.
        _FLOAT32_COPIES[model] = linears.restore(copy.deepcopy(model)).float().eval()
    return _FLOAT32_COPIES[model]


def _path_gradients(
    model: PreTrainedModel,
    x: torch.Tensor,
    x0: torch.Tensor,
    inputs: dict[str, torch.Tensor],
    target: int,
    steps: int,
) -> torch.Tensor:
    """The integral of dF/dx along the straight path x0 -> x, by `steps`-point Gauss-Legendre."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=x.dtype, device=x.device)  # (S,) in (0, 1)
    weights = torch.tensor(weights / 2, dtype=x.dtype, device=x.device)  # (S,), sum 1
    total = torch.zeros_like(x)  # (1, T, H)
    size = max(1, CHUNK_TOKENS // max(x.shape[1], 1))
    for chunk in range(0, steps, size):
        a = alphas[chunk : chunk + size].view(-1, 1, 1)  # (S', 1, 1)
        with torch.enable_grad():
            path = (x0 + a * (x - x0)).requires_grad_(True)  # (S', T, H)
            logit = _logits(model, path, inputs)[:, target]  # (S',)
            (grad,) = torch.autograd.grad(logit.sum(), path)  # (S', T, H)
        total += (grad * weights[chunk : chunk + size].view(-1, 1, 1)).sum(dim=0, keepdim=True)
    return total


def _logits(model: PreTrainedModel, embeds: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    n = embeds.shape[0]
    rows = {name: t.expand(n, -1) for name, t in inputs.items()}  # (1, T) -> (n, T)
    return model(inputs_embeds=embeds, **rows).logits.float()  # (n, num_labels)


def assemble_words(
    tokens: Sequence[_TokenLike], scores: Sequence[float], segments: Sequence[str]
) -> list[Word]:
    """Group sub-word tokens into the words of their segment, summing their attributions.

    >>> [w.text for w in assemble_words(trace.tokenizer.tokens, ig.scores, ["unbelievable film"])]  # doctest: +SKIP
    ['unbelievable', 'film']
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for token in tokens:
        if token.segment is None or token.word is None or token.span is None:
            continue
        groups.setdefault((token.segment, token.word), []).append(token.index)
    words = []
    for (segment, _), members in groups.items():
        start = min(tokens[i].span[0] for i in members)
        end = max(tokens[i].span[1] for i in members)
        words.append(
            Word(
                text=segments[segment][start:end],
                segment=segment,
                span=(start, end),
                tokens=members,
                attribution=float(sum(scores[i] for i in members)),
            )
        )
    return words
