"""Stage 2, the model: padded tensors -> logits of shape (batch, num_labels).

This is the only place that runs a model: it moves tensors to the device and turns on
`torch.inference_mode` for PyTorch models, and feeds ONNX Runtime sessions for exported ones.
`forward` is what classification runs; `forward_recorded` is the same call with the model also
asked to return what it produced on the way (for `clearpipe trace`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from clearpipe import attention, first_token, packing
from clearpipe.onnx_model import OnnxModel
from clearpipe.preprocess import Encoded


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
    model: PreTrainedModel | OnnxModel, encoded: Encoded | packing.Packed, device: torch.device
) -> torch.Tensor:
    """Run the model on one batch and return float32 logits (batch, num_labels) on the CPU.

    The batch is padded (`Encoded`) or, for models `can_pack` accepts, packed (`packing.Packed`).

    >>> logits = forward(model, preprocess(tokenizer, ["fine"], 128, True), torch.device("cpu"))
    >>> logits.shape  # doctest: +SKIP
    torch.Size([1, 2])
    """
    if isinstance(encoded, packing.Packed):
        if not can_pack(model):
            raise ValueError(f"{type(model).__name__} cannot run a packed batch; see can_pack")
        return _forward_packed(model, encoded, device)
    if isinstance(model, OnnxModel):
        return _forward_onnx(model, encoded)
    inputs = model_inputs(encoded, device)
    if first_token.installed(model):  # the last layer computes only what the head reads
        inputs[first_token.KWARG] = True
    with torch.inference_mode():
        logits = model(**inputs).logits  # (B, num_labels)
    # bf16/fp16 logits are widened before softmax so scores keep float32 precision.
    return logits.float().cpu()


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


# The classification heads of the models that can run packed, on each row's first token (rows, H),
# as their own forward applies them to `hidden_states[:, 0]`.
_HEADS: dict[str, Callable[[PreTrainedModel, torch.Tensor], torch.Tensor]] = {
    "BertForSequenceClassification": lambda m, first: m.classifier(m.dropout(m.bert.pooler(first[:, None]))),
    "DistilBertForSequenceClassification": lambda m, first: m.classifier(
        m.dropout(torch.relu(m.pre_classifier(first)))
    ),
    "RobertaForSequenceClassification": lambda m, first: m.classifier(first[:, None]),
}


def can_pack(model: PreTrainedModel | OnnxModel) -> bool:
    """True for the classifiers that `forward` can run on packed batches (see `clearpipe.packing`):
    BERT, DistilBERT and RoBERTa on `clearpipe.attention` (bf16/fp16 on the CPU).

    >>> can_pack(clearpipe.load(path, dtype="bfloat16").model)  # doctest: +SKIP
    True
    """
    return type(model).__name__ in _HEADS and model.config._attn_implementation == attention.NAME


def position_offset(model: PreTrainedModel) -> int:
    """Where a row's position ids start: 0, or after the padding index for RoBERTa."""
    return model.config.pad_token_id + 1 if model.config.model_type == "roberta" else 0


def _forward_packed(model: PreTrainedModel, packed: packing.Packed, device: torch.device) -> torch.Tensor:
    # `can_pack` models run `clearpipe.attention`, which only CPU models do: tensors stay put.
    inputs = {"input_ids": packed.input_ids, "position_ids": packed.position_ids, "clearpipe_pack": packed}
    if model.config.model_type != "distilbert":
        # Explicit zeros: the models' default slices a buffer of max-length size, and a packed
        # batch can be longer than that.
        types = (
            packed.token_type_ids if packed.token_type_ids is not None else torch.zeros_like(packed.input_ids)
        )
        inputs["token_type_ids"] = types
    pruned = first_token.installed(model)
    if pruned:
        inputs[first_token.KWARG] = True
    with torch.inference_mode():
        hidden = model.base_model(**inputs).last_hidden_state  # (1, N, H), or (B, 1, H) when pruned
        first = hidden[:, 0] if pruned else hidden[0, packed.starts]  # each row's first token
        logits = _HEADS[type(model).__name__](model, first)  # (B, num_labels)
    return logits.float().cpu()


def _forward_onnx(model: OnnxModel, encoded: Encoded) -> torch.Tensor:
    feeds = {"input_ids": encoded.input_ids.numpy(), "attention_mask": encoded.attention_mask.numpy()}
    if "token_type_ids" in model.input_names:
        types = encoded.token_type_ids
        feeds["token_type_ids"] = (
            types if types is not None else torch.zeros_like(encoded.input_ids)
        ).numpy()
    (logits,) = model.session.run(["logits"], feeds)  # (B, num_labels)
    return torch.from_numpy(logits).float()
