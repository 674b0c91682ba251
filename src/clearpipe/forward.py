"""Stage 2, the model: padded tensors -> logits of shape (batch, num_labels).

It moves a padded batch to the device and calls the model under `torch.inference_mode`; ONNX
Runtime sessions are called the same way (`clearpipe.engine.onnx_runtime`). The engine's
padding-free batches run through `clearpipe.engine.packed_forward`, which ends in the same head.
`forward` is what classification runs; `forward_recorded` is the same call with the model also
asked to return what it produced on the way (for `clearpipe trace`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from clearpipe.preprocess import Encoded

FIRST_TOKEN_KWARG = "clearpipe_first_token"
"""The keyword argument of `model(...)` that asks a last layer prepared by
`clearpipe.engine.first_token` to compute only the first token, the one the head reads."""


def model_inputs(encoded: Encoded, device: torch.device) -> dict[str, torch.Tensor]:
    """The keyword arguments of `model(...)` for one batch, moved to `device`."""
    inputs = {
        "input_ids": encoded.input_ids.to(device),
        "attention_mask": encoded.attention_mask.to(device),
    }
    if encoded.token_type_ids is not None:
        inputs["token_type_ids"] = encoded.token_type_ids.to(device)
    return inputs


def forward(
    model: PreTrainedModel, encoded: Encoded, device: torch.device, first_token_only: bool = False
) -> torch.Tensor:
    """Run the model on one padded batch and return float32 logits (batch, num_labels) on the CPU.

    `model` is a transformers model or anything called the same way (an ONNX Runtime session in
    `clearpipe.engine.onnx_runtime`). `first_token_only` passes `FIRST_TOKEN_KWARG`, for models
    whose last layer the engine prepared for it; packed batches are the engine's
    (`clearpipe.engine.packed_forward`).

    >>> logits = forward(model, preprocess(tokenizer, ["fine"], 128, True), torch.device("cpu"))
    >>> logits.shape  # doctest: +SKIP
    torch.Size([1, 2])
    """
    inputs = model_inputs(encoded, device)
    if first_token_only:  # the last layer computes only what the head reads
        inputs[FIRST_TOKEN_KWARG] = True
    with torch.inference_mode():
        logits = model(**inputs).logits  # (B, num_labels)
    # bf16/fp16 logits are widened before softmax so scores keep float32 precision.
    return logits.float().cpu()


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of each row's token vectors where `mask` is 1: (B, T, H), (B, T) -> (B, H); the
    pooled sentence embedding of sentence encoders (no first-token shortcut).

    >>> mean_pool(torch.ones(1, 3, 2), torch.tensor([[1, 1, 0]]))
    tensor([[1., 1.]])
    """
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def forward_pooled(
    model: PreTrainedModel,
    encoded: Encoded,
    device: torch.device,
    layers: tuple[int, ...],
    bf16: bool = False,
) -> torch.Tensor:
    """Run an encoder on one padded batch and mean-pool the hidden states of `layers` (0: the
    embeddings, -1: the last layer), side by side: float32 (batch, len(layers) x hidden) on the CPU.
    `bf16` runs the model under bf16 autocast.

    >>> forward_pooled(encoder, preprocess(tokenizer, ["fine"], 128, True), torch.device("cpu"), (-1,)).shape  # doctest: +SKIP
    torch.Size([1, 384])
    """
    inputs = model_inputs(encoded, device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        states = model(**inputs, output_hidden_states=True).hidden_states
    mask = inputs["attention_mask"]
    return torch.cat([mean_pool(states[k].float(), mask) for k in layers], dim=1).cpu()


@dataclass(frozen=True)
class Recorded:
    """What the model produced on the way to its logits, for one batch, as float32 CPU tensors.

    `hidden_states[0]` is the embedding output and `hidden_states[i]` layer i's output, each
    (batch, seq, hidden); `attentions[i]` is layer i+1's attention weights (batch, heads, seq, seq),
    or None when the model cannot return them; `pooled` is the base model's pooler output
    (batch, hidden) for models that have a pooler (BERT), else None.
    """

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]
    attentions: tuple[torch.Tensor, ...] | None
    pooled: torch.Tensor | None


def forward_recorded(model: PreTrainedModel, encoded: Encoded, device: torch.device) -> Recorded:
    """Run `forward`'s model call, also returning hidden states, attention weights and pooler output.

    SDPA and flash attention never materialise attention weights, so the call runs with eager
    attention, switched on for this call only; eager computes the same logits up to float rounding.

    >>> rec = forward_recorded(model, preprocess(tokenizer, ["fine"], 128, True), torch.device("cpu"))
    >>> len(rec.hidden_states) == model.config.num_hidden_layers + 1  # doctest: +SKIP
    True
    """
    inputs = model_inputs(encoded, device)
    pooled: list[torch.Tensor] = []
    pooler = getattr(model.base_model, "pooler", None)
    hook = None
    if isinstance(pooler, torch.nn.Module):
        hook = pooler.register_forward_hook(lambda _m, _i, out: pooled.append(out))
    try:
        with _eager_attention(model), torch.inference_mode():
            out = model(**inputs, output_hidden_states=True, output_attentions=True)
    finally:
        if hook is not None:
            hook.remove()
    attentions = tuple(a.float().cpu() for a in out.attentions or () if a is not None)
    return Recorded(
        logits=out.logits.float().cpu(),  # (B, num_labels)
        hidden_states=tuple(h.float().cpu() for h in out.hidden_states),  # L+1 x (B, T, H)
        attentions=attentions or None,  # L x (B, heads, T, T)
        pooled=pooled[0].float().cpu() if pooled else None,  # (B, H)
    )


@contextmanager
def _eager_attention(model: PreTrainedModel) -> Iterator[None]:
    current = model.config._attn_implementation
    # A private transformers check: models without the attention interface cannot switch.
    can_switch = getattr(model, "_can_set_attn_implementation", lambda: False)()
    if current == "eager" or not can_switch:
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(current)
